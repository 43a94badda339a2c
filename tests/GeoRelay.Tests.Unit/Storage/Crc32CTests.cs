using System.Text;
using FsPropertyAttribute = FsCheck.NUnit.PropertyAttribute;
using GeoRelay.Storage.Internal;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.Storage;

public sealed class Crc32CTests
{
    // "123456789" is the standard check value; the 32-byte vectors are from RFC 3720, appendix B.4.
    private static IEnumerable<TestCaseData> KnownVectors()
    {
        yield return new TestCaseData(Encoding.ASCII.GetBytes("123456789"), 0xE3069283u).SetName("check value 123456789");
        yield return new TestCaseData(Array.Empty<byte>(), 0u).SetName("empty");
        yield return new TestCaseData(new byte[32], 0x8A9136AAu).SetName("32 zero bytes");
        yield return new TestCaseData(Enumerable.Repeat((byte)0xFF, 32).ToArray(), 0x62A8AB43u).SetName("32 0xFF bytes");
        yield return new TestCaseData(Enumerable.Range(0, 32).Select(i => (byte)i).ToArray(), 0x46DD794Eu).SetName("ascending 0..31");
        yield return new TestCaseData(Enumerable.Range(0, 32).Select(i => (byte)(31 - i)).ToArray(), 0x113FDB5Cu).SetName("descending 31..0");
    }

    [TestCaseSource(nameof(KnownVectors))]
    public void Software_matches_known_vectors(byte[] data, uint expected) =>
        Assert.That(Crc32C.ComputeSoftware(data), Is.EqualTo(expected));

    [TestCaseSource(nameof(KnownVectors))]
    public void Hardware_matches_known_vectors(byte[] data, uint expected)
    {
        Assume.That(Crc32C.IsHardwareAccelerated, "SSE4.2 x64 not available on this machine");
        Assert.That(Crc32C.ComputeHardware(data), Is.EqualTo(expected));
    }

    [TestCaseSource(nameof(KnownVectors))]
    public void Default_path_matches_known_vectors(byte[] data, uint expected) =>
        Assert.That(Crc32C.Compute(data), Is.EqualTo(expected));

    [FsProperty(MaxTest = 200)]
    public bool Hardware_and_software_agree_and_updates_compose(byte[] data, byte split)
    {
        data ??= Array.Empty<byte>();
        uint software = Crc32C.ComputeSoftware(data);
        if (Crc32C.IsHardwareAccelerated && Crc32C.ComputeHardware(data) != software) return false;
        int cut = data.Length == 0 ? 0 : split % (data.Length + 1);
        uint composed = ~Crc32C.Update(Crc32C.Update(~0u, data.AsSpan(0, cut)), data.AsSpan(cut));
        return composed == software;
    }
}
