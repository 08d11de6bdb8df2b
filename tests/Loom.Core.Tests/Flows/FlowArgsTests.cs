using Loom.Core.Flows;

namespace Loom.Core.Tests.Flows;

public sealed class FlowArgsTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);

    [Theory]
    [InlineData("5m", 300)]
    [InlineData("30s", 30)]
    [InlineData("1h30m", 5400)]
    [InlineData("2d", 172800)]
    [InlineData("1500ms", 1.5)]
    public void Since_takes_a_duration_back_from_now(string value, double seconds) =>
        Assert.Equal(Now.AddSeconds(-seconds), FlowArgs.Since(value, Now));

    [Fact]
    public void Since_takes_an_rfc3339_time()
    {
        Assert.Equal(new DateTimeOffset(2026, 11, 30, 11, 0, 0, TimeSpan.Zero), FlowArgs.Since("2026-11-30T11:00:00Z", Now));
        Assert.Equal(new DateTimeOffset(2026, 11, 30, 11, 0, 0, TimeSpan.FromHours(1)), FlowArgs.Since("2026-11-30T11:00:00+01:00", Now));
    }

    [Theory]
    [InlineData("")]
    [InlineData("5")]
    [InlineData("5 m")]
    [InlineData("-5m")]
    [InlineData("5y")]
    [InlineData("yesterday")]
    [InlineData("2026-11-30")]
    [InlineData("99999999d")]
    [InlineData("10000000d")]
    [InlineData("3651d")]
    [InlineData("999999999h999999999d")]
    public void Since_refuses_anything_else_naming_the_flag(string value) =>
        Assert.StartsWith("--since", Assert.Throws<FormatException>(() => FlowArgs.Since(value, Now)).Message, StringComparison.Ordinal);

    [Fact]
    public void Names_are_taken_in_any_case_and_unknown_ones_refused_with_the_choices()
    {
        Assert.Equal("DROPPED", FlowArgs.Verdict("dropped"));
        Assert.Equal("POLICY_DENIED", FlowArgs.DropReason("policy_denied"));
        Assert.Equal("UDP", FlowArgs.Protocol("udp"));
        Assert.Equal("policy-verdict", FlowArgs.Type("POLICY-VERDICT"));
        Assert.Equal("--verdict \"DENIED\": not one of FORWARDED, DROPPED, TRANSLATED", Assert.Throws<FormatException>(() => FlowArgs.Verdict("DENIED")).Message);
        Assert.Contains("SERVICE_BACKEND_NOT_FOUND", Assert.Throws<FormatException>(() => FlowArgs.DropReason("NOPE")).Message, StringComparison.Ordinal);
        Assert.Throws<FormatException>(() => FlowArgs.Port(0));
        Assert.Throws<FormatException>(() => FlowArgs.Port(70000));
        Assert.Equal("x/a", FlowArgs.Pod("--pod", "x/a"));
        Assert.Throws<FormatException>(() => FlowArgs.Pod("--pod", "/a"));
        Assert.Throws<FormatException>(() => FlowArgs.Pod("--pod", "x/a/b"));
    }

    [Fact]
    public void Since_reaches_back_ten_years_at_most() =>
        Assert.Equal(Now.AddDays(-3650), FlowArgs.Since("3650d", Now));

    [Theory]
    [InlineData("web", "default/web")]
    [InlineData("y/web", "y/web")]
    public void A_service_is_namespace_and_name(string value, string expected) => Assert.Equal(expected, FlowArgs.Service(value));

    [Theory]
    [InlineData("")]
    [InlineData("a/b/c")]
    [InlineData("/web")]
    public void A_bad_service_is_refused_naming_the_flag(string value) =>
        Assert.StartsWith("--to-service", Assert.Throws<FormatException>(() => FlowArgs.Service(value)).Message, StringComparison.Ordinal);
}
