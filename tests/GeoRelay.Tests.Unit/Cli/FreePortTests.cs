using GeoRelay.Cli.Demo;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.Cli;

[TestFixture]
public sealed class FreePortTests
{
    /// <summary>Test clusters and the demo listen where no outgoing connection can take the port first, each port once.</summary>
    [Test]
    public void FreeLoopbackPortsAreDistinctAndBelowTheEphemeralRange()
    {
        var ports = LocalCluster.FreeLoopbackPorts(300);
        int ephemeral = int.Parse(File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[])['\t', ' '], StringSplitOptions.RemoveEmptyEntries)[0]);
        Assert.That(ports, Has.Count.EqualTo(300));
        Assert.That(ports, Is.Unique);
        Assert.That(ports, Has.All.InRange(10_000, ephemeral - 1));
    }
}
