using Loom.Core.Cni;

namespace Loom.Core.Tests.Cni;

public class CniEnvironmentTests
{
    private static Dictionary<string, string> Full(string command) => new()
    {
        ["CNI_COMMAND"] = command,
        ["CNI_CONTAINERID"] = "abc123",
        ["CNI_NETNS"] = "/run/netns/x",
        ["CNI_IFNAME"] = "eth0",
        ["CNI_PATH"] = "/opt/cni/bin:/usr/lib/cni",
    };

    private static CniEnvironment Parse(Dictionary<string, string> vars) =>
        CniEnvironment.Parse(name => vars.TryGetValue(name, out var v) ? v : null);

    private static CniException Fails(Dictionary<string, string> vars) => Assert.Throws<CniException>(() => Parse(vars));

    [Fact]
    public void Add_reads_every_parameter()
    {
        var env = Parse(Full("ADD"));
        Assert.Equal(CniCommand.Add, env.Command);
        Assert.Equal("abc123", env.ContainerId);
        Assert.Equal("/run/netns/x", env.NetNs);
        Assert.Equal("eth0", env.IfName);
        Assert.Equal(["/opt/cni/bin", "/usr/lib/cni"], env.Path);
    }

    [Fact]
    public void Parses_from_an_IDictionary()
    {
        var env = CniEnvironment.Parse(new System.Collections.Hashtable { ["CNI_COMMAND"] = "VERSION" });
        Assert.Equal(CniCommand.Version, env.Command);
    }

    [Theory]
    [InlineData("ADD", "CNI_CONTAINERID")]
    [InlineData("ADD", "CNI_NETNS")]
    [InlineData("ADD", "CNI_IFNAME")]
    [InlineData("CHECK", "CNI_NETNS")]
    [InlineData("CHECK", "CNI_CONTAINERID")]
    [InlineData("DEL", "CNI_CONTAINERID")]
    [InlineData("DEL", "CNI_IFNAME")]
    [InlineData("GC", "CNI_PATH")]
    public void Missing_required_variable_is_code_4_naming_it(string command, string variable)
    {
        var vars = Full(command);
        vars.Remove(variable);
        var ex = Fails(vars);
        Assert.Equal(CniErrorCodes.InvalidEnvironmentVariables, ex.Code);
        Assert.Contains(variable, ex.Msg, StringComparison.Ordinal);
    }

    [Fact]
    public void Empty_value_counts_as_missing_and_all_missing_are_listed()
    {
        var ex = Fails(new() { ["CNI_COMMAND"] = "ADD", ["CNI_IFNAME"] = "" });
        Assert.Equal("required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME] missing", ex.Msg);
    }

    [Fact]
    public void Del_does_not_need_netns()
    {
        var vars = Full("DEL");
        vars.Remove("CNI_NETNS");
        Assert.Null(Parse(vars).NetNs);
    }

    [Theory]
    [InlineData("STATUS")]
    [InlineData("VERSION")]
    public void Status_and_version_need_nothing_else(string command)
    {
        var env = Parse(new() { ["CNI_COMMAND"] = command });
        Assert.Null(env.ContainerId);
        Assert.Empty(env.Path);
    }

    [Fact]
    public void Gc_needs_only_path()
    {
        Assert.Equal(CniCommand.Gc, Parse(new() { ["CNI_COMMAND"] = "GC", ["CNI_PATH"] = "/x" }).Command);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("add")]
    [InlineData("DELETE")]
    public void Missing_or_unknown_command_is_code_4(string? command)
    {
        var vars = Full("ADD");
        if (command is null)
        {
            vars.Remove("CNI_COMMAND");
        }
        else
        {
            vars["CNI_COMMAND"] = command;
        }

        var ex = Fails(vars);
        Assert.Equal(CniErrorCodes.InvalidEnvironmentVariables, ex.Code);
        Assert.Contains("CNI_COMMAND", ex.Msg, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("a")]
    [InlineData("0abc_def.g-h")]
    [InlineData("ABCdef0123456789")]
    public void Valid_container_ids(string id)
    {
        var vars = Full("ADD");
        vars["CNI_CONTAINERID"] = id;
        Assert.Equal(id, Parse(vars).ContainerId);
    }

    [Theory]
    [InlineData("_abc")]
    [InlineData("-abc")]
    [InlineData(".abc")]
    [InlineData("ab c")]
    [InlineData("ab/c")]
    [InlineData("ab:c")]
    [InlineData("äbc")]
    public void Invalid_container_id_is_code_4_naming_it(string id)
    {
        var vars = Full("DEL");
        vars["CNI_CONTAINERID"] = id;
        var ex = Fails(vars);
        Assert.Equal(CniErrorCodes.InvalidEnvironmentVariables, ex.Code);
        Assert.Contains("CNI_CONTAINERID", ex.Msg, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("eth0")]
    [InlineData("a23456789012345")]
    [InlineData("veth-x.y_z")]
    public void Valid_interface_names(string name)
    {
        var vars = Full("ADD");
        vars["CNI_IFNAME"] = name;
        Assert.Equal(name, Parse(vars).IfName);
    }

    [Theory]
    [InlineData("a234567890123456")]
    [InlineData(".")]
    [InlineData("..")]
    [InlineData("eth/0")]
    [InlineData("eth:0")]
    [InlineData("eth 0")]
    [InlineData("eth\t0")]
    [InlineData("eth\u00a00")]
    public void Invalid_interface_name_is_code_4_naming_it(string name)
    {
        var vars = Full("ADD");
        vars["CNI_IFNAME"] = name;
        var ex = Fails(vars);
        Assert.Equal(CniErrorCodes.InvalidEnvironmentVariables, ex.Code);
        Assert.Contains("CNI_IFNAME", ex.Msg, StringComparison.Ordinal);
    }

    [Fact]
    public void Args_are_parsed_for_attachment_commands()
    {
        var vars = Full("ADD");
        vars["CNI_ARGS"] = "IgnoreUnknown=1;K8S_POD_NAME=web;FOO=bar";
        var env = Parse(vars);
        Assert.Equal("web", env.Args.K8sPodName);
        Assert.Equal("IgnoreUnknown=1;K8S_POD_NAME=web;FOO=bar", env.ArgsRaw);
    }

    [Fact]
    public void Bad_args_are_code_4_naming_CNI_ARGS()
    {
        var vars = Full("ADD");
        vars["CNI_ARGS"] = "FOO=bar";
        var ex = Fails(vars);
        Assert.Equal(CniErrorCodes.InvalidEnvironmentVariables, ex.Code);
        Assert.Contains("CNI_ARGS", ex.Details, StringComparison.Ordinal);
        Assert.Contains("FOO", ex.Details, StringComparison.Ordinal);
    }

    [Fact]
    public void Extra_known_args_are_accepted()
    {
        var vars = Full("ADD");
        vars["CNI_ARGS"] = "FOO=bar";
        var env = CniEnvironment.Parse(n => vars.TryGetValue(n, out var v) ? v : null, ["FOO"]);
        Assert.Equal("bar", env.Args.Get("FOO"));
    }

    [Fact]
    public void ToVariables_substitutes_the_command_and_skips_unset()
    {
        var vars = Full("DEL");
        vars.Remove("CNI_NETNS");
        var env = Parse(vars).ToVariables(CniCommand.Check);
        Assert.Equal("CHECK", env["CNI_COMMAND"]);
        Assert.Equal("abc123", env["CNI_CONTAINERID"]);
        Assert.False(env.ContainsKey("CNI_NETNS"));
        Assert.Equal("/opt/cni/bin:/usr/lib/cni", env["CNI_PATH"]);
    }
}
