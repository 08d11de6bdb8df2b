using Loom.Cni;
using Loom.Core.Cni;

// loom-cni: one process per CNI call. Reads CNI_* from the environment and the network config from stdin,
// prints a result (or the spec's error JSON) on stdout, logs nothing but errors to stderr.
// Read synchronously: an async copy would start the thread pool, a few milliseconds of a call that lives for ten.
var stdin = Stdio.ReadStdin();

var version = CniVersions.TryPeekConfigVersion(stdin);
try
{
    var env = CniEnvironment.FromProcess();
    if (env.Command == CniCommand.Version)
    {
        Stdio.WriteStdout(CniVersions.VersionJson(version) + "\n");
        return 0;
    }

    var conf = NetConf.Parse(stdin, env.Command);
    version = conf.CniVersion;
    var output = await CniPlugin.For(env, conf).RunAsync().ConfigureAwait(false);
    if (output is not null)
    {
        Stdio.WriteStdout(output);
    }

    return 0;
}
catch (Exception ex)
{
    return CniErrorOutput.Report(PluginErrors.Map(ex), version, Console.Out);
}
