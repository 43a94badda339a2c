using GeoRelay.Engines;
using GeoRelay.Topology;
using NUnit.Framework;
using static GeoRelay.Tests.Unit.Topology.TopologyTestFiles;

namespace GeoRelay.Tests.Unit.Topology;

/// <summary>
/// Nodes with different fingerprints refuse each other, and the simulation and running soaks hold these values: a new
/// topology key must leave the fingerprint of a file that does not use it exactly as it was.
/// </summary>
[TestFixture]
public sealed class FingerprintStabilityTests
{
    // Computed at 0f3cd4e (before the `web` key existed).
    [TestCase("three-regions.yaml", 0x4525c1652726afaaUL)]
    [TestCase("three-regions-tls.yaml", 0x4525c1652726afaaUL)]
    public void ASampleWithoutWebFingerprintsAsBefore(string sample, ulong before)
    {
        var topology = TopologyLoader.LoadFile(Sample(sample)).GetConfigOrThrow();
        Assert.That(TopologyFingerprint.Of(topology), Is.EqualTo(before));
    }

    [Test]
    public void LocalYamlFingerprintsAsBefore()
    {
        // local.yaml gained `web:` on m1; addresses are not part of the fingerprint, so its value is the one from before.
        var topology = TopologyLoader.LoadFile(Sample("local.yaml")).GetConfigOrThrow();
        Assert.That(TopologyFingerprint.Of(topology), Is.EqualTo(0x695841a69c1b6fb3UL));
    }
}
