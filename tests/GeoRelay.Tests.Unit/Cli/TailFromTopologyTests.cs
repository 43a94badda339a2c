using GeoRelay.Cli;
using NUnit.Framework;
using static GeoRelay.Tests.Unit.Topology.TopologyTestFiles;

namespace GeoRelay.Tests.Unit.Cli;

// `georelay tail --config FILE --dc NAME`: the datacenter's learner ports first (the SDK shuffles them), the others after.
[TestFixture]
public sealed class TailFromTopologyTests
{
    [Test]
    public void TheDatacentersRelaysAndMembersAreLocalAndEveryOtherDatacenterFollowsInFileOrder()
    {
        var error = new StringWriter();
        Assert.That(LearnerEndpointOptions.TryFromTopology(Sample("three-regions.yaml"), "eu-west", error, out var endpoints), Is.True, error.ToString());
        Assert.Multiple(() =>
        {
            Assert.That(endpoints.Local, Is.EqualTo(new[] { "127.0.0.1:7202", "127.0.0.1:7212", "127.0.0.1:7222", "127.0.0.1:7232", "127.0.0.1:7242" }));
            Assert.That(endpoints.Others, Is.EqualTo(new[]
            {
                "127.0.0.1:7102", "127.0.0.1:7112", "127.0.0.1:7122",                                     // us-east: the leader, members
                "127.0.0.1:7302", "127.0.0.1:7312", "127.0.0.1:7322", "127.0.0.1:7332", "127.0.0.1:7342", // ap-south
            }));
            Assert.That(endpoints.Cluster, Is.EqualTo("three-regions"));
            Assert.That(endpoints.Ca, Is.Null, "the sample is insecure: plain TCP");
        });
    }

    [Test]
    public void WithTlsTheClusterCaIsUsed()
    {
        var error = new StringWriter();
        Assert.That(LearnerEndpointOptions.TryFromTopology(Sample("three-regions-tls.yaml"), "ap-south", error, out var endpoints), Is.True, error.ToString());
        Assert.That(endpoints.Ca, Does.EndWith("ca.crt"));
        Assert.That(Path.IsPathRooted(endpoints.Ca!), Is.True, "resolved against the topology file's folder");
    }

    [Test]
    public void AnUnknownDatacenterIsNamedWithTheOnesThereAre()
    {
        var error = new StringWriter();
        Assert.That(LearnerEndpointOptions.TryFromTopology(Sample("three-regions.yaml"), "eu-east", error, out _), Is.False);
        Assert.That(error.ToString(), Does.Contain("--dc: ").And.Contain("has no datacenter 'eu-east'; it has us-east, eu-west, ap-south"));
    }

    [Test]
    public void ConfigWithoutDcSaysWhichDatacentersThereAre()
    {
        var error = new StringWriter();
        Assert.That(LearnerEndpointOptions.TryFromTopology(Sample("three-regions.yaml"), null, error, out _), Is.False);
        Assert.That(error.ToString(), Is.EqualTo("--config needs --dc NAME, the datacenter this learner runs in: one of us-east, eu-west, ap-south\n"));
    }

    [Test]
    public void ABrokenTopologyPrintsItsProblems()
    {
        string path = Path.Combine(Path.GetTempPath(), $"georelay-tail-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, "cluster: x\n");
        try
        {
            var error = new StringWriter();
            Assert.That(LearnerEndpointOptions.TryFromTopology(path, "eu-west", error, out _), Is.False);
            Assert.That(error.ToString(), Does.Contain($"{path}:1:1: missing required key 'leader'").And.EndWith("3 problems\n"));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestCase(new[] { "--dc", "eu-west" }, "--dc needs --config FILE (the topology that lists the datacenter's nodes)")]
    [TestCase(new string[0], "give the learner endpoints: --connect HOST:PORT[,...], --local HOST:PORT[,...], or --config FILE --dc NAME")]
    [TestCase(new[] { "--local", "10.0.0.1" }, "--local: '10.0.0.1' is not host:port")]
    [TestCase(new[] { "--connect", "10.0.0.1:7300", "--local", "10.0.0.2:x" }, "--local: '10.0.0.2:x' is not host:port")]
    public async Task BadCommandLinesExitTwoWithTheReason(string[] args, string message)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var parse = TailCommand.Create().Parse(args);
        int exit = await parse.InvokeAsync(new System.CommandLine.InvocationConfiguration { Output = output, Error = error });
        Assert.That(exit, Is.EqualTo(2), error.ToString());
        Assert.That(error.ToString().Trim(), Is.EqualTo(message));
    }
}
