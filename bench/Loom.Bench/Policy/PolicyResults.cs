using Loom.Bench.Services;

namespace Loom.Bench.Policy;

/// <summary>Everything one run measured; the report prints it and writes it as JSON.</summary>
internal sealed class PolicyResults
{
    public string Cluster { get; set; } = "";

    public string Prefix { get; set; } = "";

    public string Status { get; set; } = "ok";

    public string? Reason { get; set; }

    public double LabUpS { get; set; }

    public Dictionary<string, string> Pods { get; } = [];

    public double GhostsS { get; set; }

    public double GhostsInIpcacheS { get; set; }

    /// <summary>Per node: the policy controller's ipcache entries once every ghost was in.</summary>
    public Dictionary<string, int> Ipcache { get; } = [];

    /// <summary>Mode (a) no policy, (b) 100 policies: one cell per repetition, in the order run.</summary>
    public List<(string Mode, int Rep, LoadCell Cell)> Cells { get; } = [];

    /// <summary>Lab.ApplyAsync of the 100 policies, and the time until the client passed and the intruder did not.</summary>
    public List<double> PoliciesApplyMs { get; } = [];

    public List<double> PoliciesEnforcedMs { get; } = [];

    /// <summary>One line per (b) repetition: the third pod's connection to the server after the measurement.</summary>
    public List<string> EnforcementChecks { get; } = [];

    /// <summary>Per node, per repetition: ms from the start of the allow's apply to the first connection from that node.</summary>
    public Dictionary<string, List<double>> ApplyToEnforced { get; } = [];

    public List<double> AllowApplyCallMs { get; } = [];

    /// <summary>Per cycle: ms from the start of the allow's delete to the last connection that still passed (0: none did).</summary>
    public List<double> DeleteToDeniedMs { get; } = [];

    public List<string> Failures { get; } = [];

    /// <summary>Per node: loom_policy_pass_seconds observed during the apply/delete cycles (bucket upper bounds, ms).</summary>
    public Dictionary<string, (double Count, double P50Ms, double P99Ms)> AgentPass { get; } = [];

    /// <summary>Agents' VmRSS in MiB: before the ghosts, then with the ghosts' identities and the 100 policies.</summary>
    public Dictionary<string, double> RssBeforeMiB { get; } = [];

    public Dictionary<string, double> RssAfterMiB { get; } = [];

    /// <summary>The agents' managed heap (dotnet_total_memory_bytes) at the same two moments, MiB.</summary>
    public Dictionary<string, double> ManagedBeforeMiB { get; } = [];

    public Dictionary<string, double> ManagedAfterMiB { get; } = [];

    public string LoadStart { get; set; } = "";

    public string LoadEnd { get; set; } = "";
}
