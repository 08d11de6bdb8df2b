using Loom.Core.Model;
using Loom.Core.Selection;

namespace Loom.Lab;

/// <summary>A toleration: Equal (key and value) or Exists (key, or every taint when the key is empty); effect empty = all.</summary>
public sealed record LabToleration(string? Key, string Operator, string? Value, string? Effect)
{
    public bool Tolerates(Taint taint)
    {
        ArgumentNullException.ThrowIfNull(taint);
        if (!string.IsNullOrEmpty(Effect) && Effect != taint.Effect.ToString())
        {
            return false;
        }

        if (string.IsNullOrEmpty(Key))
        {
            return Operator == "Exists";
        }

        return Key == taint.Key && (Operator == "Exists" || (Value ?? "") == (taint.Value ?? ""));
    }
}

/// <summary>One required pod anti-affinity term: no two matching pods in the same topology domain.</summary>
public sealed record LabAntiAffinityTerm(string TopologyKey, LabelSelector Selector);

/// <summary>One preferred pod anti-affinity term: the scheduler avoids domains holding a matching pod, by weight (1-100).</summary>
public sealed record LabWeightedAntiAffinityTerm(int Weight, LabAntiAffinityTerm Term);

/// <summary>One container of a pod: what it runs and the ports it declares (named ones reach the agent's Endpoint).</summary>
public sealed record LabContainer
{
    public string Name { get; init; } = "";

    public string Image { get; init; } = "";

    public List<string> Command { get; init; } = [];

    public List<string> Args { get; init; } = [];

    public List<ContainerPort> Ports { get; init; } = [];
}

/// <summary>What the lab runs for a pod: the Kubernetes pod spec fields Loom honours.</summary>
public sealed record LabPodSpec
{
    public Dictionary<string, string> Labels { get; init; } = new(StringComparer.Ordinal);

    /// <summary>Every container, in order; empty in a spec written before pods had several (then <see cref="Image"/> is the one).</summary>
    public List<LabContainer> Containers { get; init; } = [];

    /// <summary><see cref="Containers"/>, or the single container <see cref="Image"/>, <see cref="Command"/> and <see cref="Args"/> describe.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public IReadOnlyList<LabContainer> AllContainers => Containers.Count > 0 ? Containers : [new LabContainer { Name = "main", Image = Image, Command = Command, Args = Args }];

    /// <summary>The first container's image, command and args (what a one-container pod runs).</summary>
    public string Image { get; init; } = "";

    public List<string> Command { get; init; } = [];

    public List<string> Args { get; init; } = [];

    public string? NodeName { get; init; }

    public Dictionary<string, string> NodeSelector { get; init; } = new(StringComparer.Ordinal);

    public List<LabToleration> Tolerations { get; init; } = [];

    public List<LabAntiAffinityTerm> AntiAffinity { get; init; } = [];

    public List<LabWeightedAntiAffinityTerm> PreferredAntiAffinity { get; init; } = [];
}

/// <summary>A Deployment as the lab keeps it: its pods are <c>NAME-HASH-xxxxx</c>, HASH from the template.</summary>
public sealed record LabDeployment
{
    public required string Namespace { get; init; }

    public required string Name { get; init; }

    public int Replicas { get; init; } = 1;

    public LabelSelector Selector { get; init; } = new();

    public LabPodSpec Template { get; init; } = new();

    /// <summary>The pod-template-hash of <see cref="Template"/>.</summary>
    public string TemplateHash { get; init; } = "";

    public DateTimeOffset Created { get; init; }
}

/// <summary>A pod the scheduler could not place (yet).</summary>
public sealed record LabPendingPod
{
    public required string Namespace { get; init; }

    public required string Name { get; init; }

    public string? Owner { get; init; }

    public LabPodSpec Spec { get; init; } = new();

    /// <summary>Why it is Pending, as kubectl's FailedScheduling event says it.</summary>
    public string Reason { get; init; } = "";

    public DateTimeOffset Created { get; init; }
}

/// <summary>When a Service was applied (the store's Service has no timestamps).</summary>
public sealed record LabServiceRecord(string Namespace, string Name, DateTimeOffset Created);

/// <summary>The images the lab can run, and how.</summary>
public static class LabImages
{
    public const string Whoami = "traefik/whoami";
    public const string Dns = "loom/dns";
    public const string Agnhost = "registry.k8s.io/e2e-test-images/agnhost";

    public enum Kind
    {
        Unknown,
        Whoami,
        Dns,
        Sleep,

        /// <summary>agnhost serve-hostname (Loom's implementation, <c>loom agnhost</c>) or agnhost pause (idle).</summary>
        Agnhost,
    }

    /// <summary>Whether an exec'd command's argv[0] is agnhost (run as <c>loom agnhost</c>).</summary>
    public static bool IsAgnhostCommand(string argv0) => argv0 is "agnhost" or "/agnhost";

    /// <summary>The agnhost subcommand and its flags: command and args joined, without the /agnhost entrypoint.</summary>
    public static List<string> AgnhostArgs(IReadOnlyList<string> command, IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(command);
        ArgumentNullException.ThrowIfNull(args);
        var all = command.Concat(args).ToList();
        return all.Count > 0 && IsAgnhostCommand(all[0]) ? all[1..] : all;
    }

    public static string Repository(string image)
    {
        ArgumentNullException.ThrowIfNull(image);
        var name = image.Split('@')[0];
        var slash = name.LastIndexOf('/');
        var colon = name.LastIndexOf(':');
        if (colon > slash)
        {
            name = name[..colon];
        }

        foreach (var registry in new[] { "docker.io/library/", "docker.io/", "index.docker.io/" })
        {
            if (name.StartsWith(registry, StringComparison.Ordinal))
            {
                name = name[registry.Length..];
            }
        }

        return name;
    }

    public static Kind Classify(string image, IReadOnlyList<string> command, IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(command);
        ArgumentNullException.ThrowIfNull(args);
        var repo = Repository(image);
        if (IsSleep(command, args))
        {
            return Kind.Sleep;
        }

        return repo switch
        {
            Whoami => Kind.Whoami,
            Dns => Kind.Dns,
            Agnhost when AgnhostArgs(command, args) is ["serve-hostname", ..] or ["pause"] => Kind.Agnhost,
            _ => Kind.Unknown,
        };
    }

    /// <summary>The port traefik/whoami listens on: <c>--port N</c> in the args, else 80.</summary>
    public static int WhoamiPort(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        for (var i = 0; i < args.Count; i++)
        {
            var a = args[i].TrimStart('-');
            if (a == "port" && i + 1 < args.Count && int.TryParse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture, out var p))
            {
                return p;
            }

            if (a.StartsWith("port=", StringComparison.Ordinal) && int.TryParse(a[5..], System.Globalization.CultureInfo.InvariantCulture, out var q))
            {
                return q;
            }
        }

        return 80;
    }

    private static bool IsSleep(IReadOnlyList<string> command, IReadOnlyList<string> args)
    {
        var all = command.Concat(args).ToList();
        if (all.Count == 0)
        {
            return false;
        }

        var first = Path.GetFileName(all[0]);
        if (first == "sleep")
        {
            return true;
        }

        // sh -c "sleep infinity" / "while true; do sleep 3600; done"
        return first is "sh" or "bash" or "ash" && all.Count >= 3 && all[1] == "-c"
               && all[2].TrimStart().StartsWith("sleep", StringComparison.Ordinal) || (first is "sh" or "bash" or "ash" && all.Count >= 3 && all[2].Contains("do sleep", StringComparison.Ordinal));
    }
}
