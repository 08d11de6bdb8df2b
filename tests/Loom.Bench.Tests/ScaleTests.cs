using Loom.Bench.Charts;

namespace Loom.Bench.Tests;

public class ScaleTests
{
    [Theory]
    [InlineData(0.7, 1)]
    [InlineData(1, 1)]
    [InlineData(1.3, 2)]
    [InlineData(17, 20)]
    [InlineData(22, 25)]
    [InlineData(3100, 5000)]
    [InlineData(0.031, 0.05)]
    public void Nice_step_is_the_smallest_1_2_2_5_5_step_at_least_the_raw_one(double raw, double step) =>
        Assert.Equal(step, LinearScale.NiceStep(raw), 9);

    [Fact]
    public void Linear_scale_rounds_out_to_nice_ticks_from_zero_and_maps_ends_to_pixels()
    {
        var s = LinearScale.Nice([12, 87], from: 300, to: 100);
        Assert.Equal(0, s.Min);
        Assert.Equal(100, s.Max);
        Assert.Equal([0, 20, 40, 60, 80, 100], s.Ticks());
        Assert.Equal(300, s.Map(0), 9);
        Assert.Equal(100, s.Map(100), 9);
        Assert.Equal(200, s.Map(50), 9);
    }

    [Fact]
    public void Linear_ticks_print_without_binary_noise()
    {
        var s = LinearScale.Nice([0.3], 0, 100);
        Assert.All(s.Ticks(), t => Assert.True(Scale.Label(t).Length <= 4, Scale.Label(t)));
        Assert.Contains(0.3, s.Ticks());
    }

    [Fact]
    public void Linear_scale_of_a_single_value_or_nothing_still_has_a_range()
    {
        Assert.True(LinearScale.Nice([0], 0, 100).Max > 0);
        Assert.True(LinearScale.Nice([], 0, 100).Max > 0);
        Assert.True(LinearScale.Nice([double.NaN, 5], 0, 100).Max >= 5);
    }

    [Fact]
    public void Log_scale_spans_whole_decades_and_maps_each_decade_to_equal_pixels()
    {
        var s = LogScale.Decades([0.845, 21828.754, double.NaN, 0, -3], from: 400, to: 0);
        Assert.Equal(0.1, s.Min, 12);
        Assert.Equal(100000, s.Max, 6);
        Assert.Equal([0.1, 1, 10, 100, 1000, 10000, 100000], s.Ticks());
        Assert.Equal(400, s.Map(0.1), 9);
        Assert.Equal(0, s.Map(100000), 9);
        // Six decades over 400 px: each decade is 400/6 px, whatever its place.
        Assert.Equal(400.0 / 6, s.Map(1) - s.Map(10), 9);
        Assert.Equal(s.Map(1) - s.Map(10), s.Map(1000) - s.Map(10000), 9);
    }

    [Fact]
    public void Short_log_axis_gets_2x_and_5x_ticks()
    {
        var s = LogScale.Decades([15, 80], 0, 100);
        Assert.Equal([10, 20, 50, 100], s.Ticks());
    }

    [Theory]
    [InlineData(0, "0")]
    [InlineData(5000, "5000")]
    [InlineData(10000, "10k")]
    [InlineData(25000, "25k")]
    [InlineData(2000000, "2M")]
    [InlineData(0.5, "0.5")]
    [InlineData(0.001, "0.001")]
    [InlineData(2.5, "2.5")]
    public void Tick_labels_are_short_and_culture_free(double v, string label) => Assert.Equal(label, Scale.Label(v));

    [Fact]
    public void Wrap_keeps_lines_within_the_width_and_cuts_an_overlong_word()
    {
        Assert.Equal(["loom-cni routed +", "built-in IPAM"], Text.Wrap("loom-cni routed + built-in IPAM", 18));
        Assert.All(Text.Wrap("routed+native+eBPF host routing (bench/native-legacy.yaml)", 12), l => Assert.True(l.Length <= 12, l));
        Assert.Equal([""], Text.Wrap("", 10));
    }
}
