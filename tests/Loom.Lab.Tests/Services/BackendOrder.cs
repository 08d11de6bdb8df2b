using Xunit.Abstractions;
using Xunit.Sdk;

namespace Loom.Lab.Tests.Services;

/// <summary>
/// Runs the tests without a backend argument first (by name), then a theory's cases by their backend (xunit's default
/// order is by a hash): the NodePort lab switches backends in turn, iptables, nftables, then eBPF, so what a switch
/// away from eBPF would leave behind cannot blur the other backends' own results.
/// </summary>
public sealed class BackendOrder : ITestCaseOrderer
{
    public const string Name = "Loom.Lab.Tests.Services.BackendOrder";

    public const string Assembly = "Loom.Lab.Tests";

    public IEnumerable<TTestCase> OrderTestCases<TTestCase>(IEnumerable<TTestCase> testCases)
        where TTestCase : ITestCase =>
        testCases.OrderBy(t => t.TestMethodArguments is [Loom.Core.Model.ServiceProxyMode m, ..] ? (int)m : -1)
            .ThenBy(t => t.DisplayName, StringComparer.Ordinal);
}
