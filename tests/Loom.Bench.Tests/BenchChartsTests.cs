using System.Text.Json;
using Loom.Bench.Charts;
using static Loom.Bench.Tests.SvgTests;

namespace Loom.Bench.Tests;

/// <summary>The charts of each bench, from JSON shaped like the benches write it (snake_case, "NaN" as a string).</summary>
public class BenchChartsTests
{
    private const string Cni = """
    {
      "date": "2026-12-01T03:41:32.1Z", "commit": "abc1234",
      "machine": { "nproc": 2, "cpu": "Xeon", "kernel": "6.18", "load_average_at_start": "1 2 3", "load_average_at_end": "4 5 6", "runtime": ".NET 10" },
      "pods": 100, "rounds": 3,
      "rows": [
        { "key": "ref", "title": "reference bridge + host-local", "add": { "p50": 15.2, "p99": 27.8 }, "del": { "p50": 25.9, "p99": 37.1 } },
        { "key": "lbi", "title": "loom-cni + built-in IPAM", "add": { "p50": 9.1, "p99": 14 }, "del": { "p50": 24, "p99": 30 } }
      ],
      "floors": [ { "key": "fbr", "title": "floor: in-process netlink, bridge", "add": { "p50": 2.1, "p99": 3 }, "del": { "p50": 20, "p99": 25 } } ],
      "ratios": [ { "row": "lbi", "add_p50": 0.6 } ],
      "probes": [
        { "key": "floor_static", "title": "floor: busybox cat (static)", "stats": { "p50": 1.9, "p99": 4 } },
        { "key": "version_loom_cni", "title": "loom-cni VERSION", "stats": { "p50": 3.1, "p99": 6 } }
      ]
    }
    """;

    [Fact]
    public void Cni_chart_has_a_group_per_row_and_floor_row_and_the_spawn_floor_as_a_line()
    {
        using var doc = JsonDocument.Parse(Cni);
        var (file, svg) = Assert.Single(CniChart.Build(doc.RootElement));
        Assert.Equal("cni.svg", file);
        var x = Parse(svg);
        // 3 groups (2 rows + the floor row) x ADD and DEL; the ratios array is not a row.
        Assert.Equal(6, WithClass(x, "rect", "bar").Count());
        Assert.Equal(6, WithClass(x, "line", "whisker").Count());
        Assert.Single(WithClass(x, "line", "reference"));
        var text = string.Join("|", x.Descendants().Where(e => e.Name.LocalName == "text").Select(e => e.Value));
        Assert.Contains("floor: in-process", text);
        Assert.Contains("2026-12-01 03:41 UTC", text);
        Assert.Contains("abc1234", text);
        Assert.Contains("loom-cni VERSION", text);
    }

    private const string Services = """
    {
      "date": "2026-12-01T03:33:20Z", "commit": "abc1234",
      "runs": [
        { "backend": "iptables", "nproc": 2, "cpu": "Xeon", "kernel": "6.18", "load_average_at_start": "1", "load_average_at_end": "2",
          "baseline": { "rate": 7600 },
          "cells": [
            { "services": 1, "initial": { "stats": { "p50": 20 }, "timed_out": 0 }, "full": { "stats": { "p50": 49 } }, "change": { "stats": { "p50": 20 } },
              "service": { "rate": 11600 }, "direct": { "rate": 11000 } },
            { "services": 1000, "initial": { "stats": { "p50": 1282 } }, "full": { "stats": { "p50": 2109 } }, "change": { "stats": { "p50": 51 } },
              "service": { "rate": 12000 }, "direct": { "rate": 11400 } },
            { "services": 10000, "initial": { "stats": { "p50": "NaN" }, "timed_out": 1, "timeout_seconds": 60 }, "full": { "stats": { "p50": "NaN" } },
              "change": { "stats": { "p50": "NaN" } }, "service": null, "direct": null }
          ] },
        { "backend": "ebpf", "baseline": { "rate": 14000 },
          "cells": [
            { "services": 1, "initial": { "stats": { "p50": 461 } }, "full": { "stats": { "p50": 289 } }, "change": { "stats": { "p50": 0.8 } }, "service": { "rate": 17000 }, "direct": { "rate": 12500 } },
            { "services": 10000, "initial": { "stats": { "p50": 651 } }, "full": { "stats": { "p50": 775 } }, "change": { "stats": { "p50": 16 } }, "service": { "rate": 17600 }, "direct": { "rate": 16000 } }
          ] }
      ]
    }
    """;

    [Fact]
    public void Services_charts_draw_a_line_per_backend_and_mark_the_killed_sync()
    {
        using var doc = JsonDocument.Parse(Services);
        var charts = ServicesCharts.Build(doc.RootElement).ToDictionary(c => c.File, c => Parse(c.Svg));
        Assert.Equal(["services-conn.svg", "services-sync.svg"], charts.Keys.Order());

        // conn/s: service and direct per backend; iptables has no point at 10000 (its sync was killed).
        var conn = WithClass(charts["services-conn.svg"], "polyline", "series").ToList();
        Assert.Equal(4, conn.Count);
        Assert.Equal([2, 2, 2, 2], conn.Select(l => PolylinePoints(l).Count));

        // sync: initial, full, change per backend; one x where iptables' initial sync was killed at 60 s.
        var sync = charts["services-sync.svg"];
        Assert.Equal(6, WithClass(sync, "polyline", "series").Count());
        Assert.Equal(2 + 2, WithClass(sync, "line", "cross").Count()); // the marker's 2 strokes, the legend's 2
        var text = string.Join("|", sync.Descendants().Where(e => e.Name.LocalName == "text").Select(e => e.Value));
        Assert.Contains("iptables initial > 60 s", text);
    }

    private const string Datapath = """
    {
      "date": "2026-12-01T03:46:49Z", "commit": "abc1234", "machine": { "nproc": 2, "cpu": "Xeon", "kernel": "6.18", "load_average": "5" }, "load_end": "6",
      "options": { "reps": 3, "seconds": 3, "latency_seconds": 2 },
      "underlay": { "gbps1": [5, 6, 7], "gbps4": [4, 5, 6], "median_gbps1": 6, "median_gbps4": 5, "rtt_us": { "p50": 25, "p99": 60 } },
      "configs": [
        { "key": "flannel", "title": "bridge+VXLAN (flannel.yaml)", "status": "ok", "verdict": "NOT MET (thr 0.70x / 0.68x)",
          "ratios": { "one": 0.7, "four": 0.68, "p50": 1.3, "p99": 1.2 },
          "pods": { "gbps1": [4, 4.5, 5], "gbps4": [3, 3.5, 4], "median_gbps1": 4.5, "median_gbps4": 3.5, "rtt_us": { "p50": 33, "p99": 80 } } },
        { "key": "ebpf", "title": "routed+native+eBPF host routing (cilium.yaml)", "status": "not working", "reason": "no path", "verdict": "not measured",
          "ratios": null, "pods": { "gbps1": [], "gbps4": [], "median_gbps1": null, "median_gbps4": null, "rtt_us": { "p50": "NaN", "p99": "NaN" } } }
      ]
    }
    """;

    [Fact]
    public void Datapath_charts_have_bars_for_the_underlay_and_working_configurations_only()
    {
        using var doc = JsonDocument.Parse(Datapath);
        var charts = DatapathCharts.Build(doc.RootElement).ToDictionary(c => c.File, c => Parse(c.Svg));
        var thr = charts["datapath-throughput.svg"];
        Assert.Equal(4, WithClass(thr, "rect", "bar").Count());
        Assert.Equal(4, WithClass(thr, "line", "whisker").Count());
        Assert.Equal(4, WithClass(charts["datapath-latency.svg"], "rect", "bar").Count());
        var text = string.Join("|", thr.Descendants().Where(e => e.Name.LocalName == "text").Select(e => e.Value));
        Assert.Contains("not working", text);
        Assert.Contains("flannel: 0.70x / 0.68x thr", text);
    }

    [Fact]
    public void Charts_command_takes_the_newest_dated_json_of_each_kind_and_skips_a_missing_kind()
    {
        var dir = Directory.CreateTempSubdirectory("loom-charts-test-");
        try
        {
            var input = Directory.CreateDirectory(Path.Combine(dir.FullName, "in")).FullName;
            var output = Path.Combine(dir.FullName, "out");
            File.WriteAllText(Path.Combine(input, "cni-20261130-120000.json"), "{ not json");
            File.WriteAllText(Path.Combine(input, "cni-20261201-034132.json"), Cni);
            File.WriteAllText(Path.Combine(input, "cni-latest.json"), "{ not json either");
            File.WriteAllText(Path.Combine(input, "services-20261201-033320.json"), Services);
            Assert.Equal(Path.Combine(input, "cni-20261201-034132.json"), ChartsCommand.Newest(input, "cni"));
            Assert.Null(ChartsCommand.Newest(input, "datapath"));

            var saved = Console.Out;
            using var log = new StringWriter();
            Console.SetOut(log);
            int rc;
            try
            {
                rc = ChartsCommand.Run(["--in", input, "--out", output]);
            }
            finally
            {
                Console.SetOut(saved);
            }

            Assert.Equal(0, rc);
            Assert.Equal(["cni.svg", "services-conn.svg", "services-sync.svg"], Directory.GetFiles(output).Select(Path.GetFileName).Order());
            Assert.Contains("datapath: no datapath-*.json", log.ToString());
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
