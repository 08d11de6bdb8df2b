using Loom.Core.Validation;

namespace Loom.Core.Tests.Validation;

/// <summary>The apimachinery name checks, with cases from k8s.io/apimachinery/pkg/util/validation/validation_test.go.</summary>
public sealed class NameValidationTests
{
    [Theory]
    [InlineData("a")]
    [InlineData("ab")]
    [InlineData("abc")]
    [InlineData("a1")]
    [InlineData("a-1")]
    [InlineData("a--1--2--b")]
    [InlineData("0")]
    [InlineData("01")]
    [InlineData("0-1")]
    public void Dns1123_labels_accepted(string value) => Assert.Empty(NameValidation.IsDns1123Label(value));

    [Theory]
    [InlineData("")]
    [InlineData("A")]
    [InlineData("ABC")]
    [InlineData("aBc")]
    [InlineData("a_1")]
    [InlineData("a.1")]
    [InlineData("-a")]
    [InlineData("a-")]
    [InlineData("a\n")]
    [InlineData("a b")]
    [InlineData("1 ")]
    public void Dns1123_labels_refused(string value) => Assert.NotEmpty(NameValidation.IsDns1123Label(value));

    [Fact]
    public void Dns1123_label_is_at_most_63_characters()
    {
        Assert.Empty(NameValidation.IsDns1123Label(new string('a', 63)));
        Assert.Contains("must be no more than 63 characters", NameValidation.IsDns1123Label(new string('a', 64)));
    }

    [Theory]
    [InlineData("a", true)]
    [InlineData("a.b.c.d.e", true)]
    [InlineData("11.22.33", true)]
    [InlineData("a.b-c", true)]
    [InlineData("A.a", false)]
    [InlineData("a..b", false)]
    [InlineData(".a", false)]
    [InlineData("a.", false)]
    [InlineData("a_b", false)]
    [InlineData("a.b\n", false)]
    public void Dns1123_subdomains(string value, bool valid) => Assert.Equal(valid, NameValidation.IsDns1123Subdomain(value).Count == 0);

    [Fact]
    public void Dns1123_subdomain_is_at_most_253_characters()
    {
        var ok = string.Join('.', Enumerable.Repeat(new string('a', 63), 4))[..253];
        Assert.Empty(NameValidation.IsDns1123Subdomain(ok));
        Assert.NotEmpty(NameValidation.IsDns1123Subdomain(ok + "a"));
    }

    [Theory]
    [InlineData("a", true)]
    [InlineData("a-1", true)]
    [InlineData("webpod", true)]
    [InlineData("1a", false)] // a DNS-1035 label starts with a letter
    [InlineData("0", false)]
    [InlineData("a-", false)]
    [InlineData("A", false)]
    [InlineData("a.b", false)]
    public void Dns1035_labels(string value, bool valid) => Assert.Equal(valid, NameValidation.IsDns1035Label(value).Count == 0);

    [Theory]
    [InlineData("telnet")]
    [InlineData("re-mail-ck")]
    [InlineData("pop3")]
    [InlineData("a")]
    [InlineData("a-1-b")]
    [InlineData("1-a-b")]
    [InlineData("abcdefghijklmno")] // 15 characters
    public void Iana_service_names_accepted(string value) => Assert.Empty(NameValidation.IsValidPortName(value));

    [Theory]
    [InlineData("", "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")]
    [InlineData("abcdefghijklmnop", "must be no more than 15 characters")]
    [InlineData("Abc", "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")]
    [InlineData("a_b", "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")]
    [InlineData("123", "must contain at least one letter (a-z)")]
    [InlineData("a--b", "must not contain consecutive hyphens")]
    [InlineData("-ab", "must not begin or end with a hyphen")]
    [InlineData("ab-", "must not begin or end with a hyphen")]
    [InlineData("x\"\n-A", "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")]
    [InlineData("http\n", "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")]
    public void Iana_service_names_refused(string value, string reason) => Assert.Contains(reason, NameValidation.IsValidPortName(value));

    [Theory]
    [InlineData("app", true)]
    [InlineData("app.kubernetes.io/name", true)]
    [InlineData("kubernetes.io/hostname", true)]
    [InlineData("A_b.c-D", true)]
    [InlineData("", false)]
    [InlineData("/name", false)]
    [InlineData("a/b/c", false)]
    [InlineData("Example.com/name", false)]
    [InlineData("-app", false)]
    [InlineData("app-", false)]
    [InlineData("a b", false)]
    [InlineData("app\n", false)]
    public void Label_keys(string value, bool valid) => Assert.Equal(valid, NameValidation.IsQualifiedName(value).Count == 0);

    [Fact]
    public void Label_key_name_part_is_at_most_63_characters()
    {
        Assert.Empty(NameValidation.IsQualifiedName("example.com/" + new string('a', 63)));
        Assert.Contains("name part must be no more than 63 characters", NameValidation.IsQualifiedName(new string('a', 64)));
    }

    [Theory]
    [InlineData("", true)]
    [InlineData("webpod", true)]
    [InlineData("1.2_3-A", true)]
    [InlineData("a/b", false)]
    [InlineData("-a", false)]
    [InlineData("a\"b", false)]
    [InlineData("a\nb", false)]
    public void Label_values(string value, bool valid) => Assert.Equal(valid, NameValidation.IsValidLabelValue(value).Count == 0);

    [Fact]
    public void Label_value_is_at_most_63_characters() =>
        Assert.Contains("must be no more than 63 characters", NameValidation.IsValidLabelValue(new string('a', 64)));

    [Theory]
    [InlineData(1, true)]
    [InlineData(65535, true)]
    [InlineData(0, false)]
    [InlineData(-1, false)]
    [InlineData(65536, false)]
    public void Port_numbers(long port, bool valid) => Assert.Equal(valid, NameValidation.IsValidPortNum(port).Count == 0);
}
