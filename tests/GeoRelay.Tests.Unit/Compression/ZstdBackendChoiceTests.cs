using NUnit.Framework;
using System.Runtime.InteropServices;
using GeoRelay.Codec.Compression;

namespace GeoRelay.Tests.Unit.Compression;

/// <summary>How a process picks its back end from <c>GEORELAY_ZSTD</c> and whether libzstd loads.</summary>
public class ZstdBackendChoiceTests
{
    private static readonly Func<bool> Loads = () => true;
    private static readonly Func<bool> DoesNotLoad = () => false;

    [TestCase(null)]
    [TestCase("")]
    [TestCase("auto")]
    [TestCase(" AUTO ")]
    public void Auto_prefers_libzstd_and_falls_back_to_ZstdSharp(string? setting)
    {
        Assert.That(Zstd.ChooseBackend(setting, Loads, out string? reason), Is.EqualTo(ZstdBackend.Native));
        Assert.That(reason, Is.Null);
        Assert.That(Zstd.ChooseBackend(setting, DoesNotLoad, out reason), Is.EqualTo(ZstdBackend.Managed));
        Assert.That(reason, Does.Contain("libzstd.so.1").And.Contain("did not load"));
    }

    [TestCase("managed")]
    [TestCase("Managed ")]
    public void Managed_is_used_without_even_loading_libzstd(string setting)
    {
        Func<bool> probe = () => throw new AssertionException("libzstd was probed");
        Assert.That(Zstd.ChooseBackend(setting, probe, out string? reason), Is.EqualTo(ZstdBackend.Managed));
        Assert.That(reason, Is.EqualTo("GEORELAY_ZSTD=managed"));
    }

    [Test]
    public void Native_does_not_fall_back_when_libzstd_is_missing()
    {
        Assert.That(Zstd.ChooseBackend("native", DoesNotLoad, out string? reason), Is.EqualTo(ZstdBackend.Native));
        Assert.That(reason, Does.Contain("did not load"));
    }

    [Test]
    public void An_unknown_setting_is_reported_and_treated_as_auto()
    {
        Assert.That(Zstd.ChooseBackend("fast", Loads, out string? reason), Is.EqualTo(ZstdBackend.Native));
        Assert.That(reason, Does.Contain("GEORELAY_ZSTD=fast ignored"));
        Assert.That(Zstd.ChooseBackend("fast", DoesNotLoad, out reason), Is.EqualTo(ZstdBackend.Managed));
        Assert.That(reason, Does.Contain("GEORELAY_ZSTD=fast ignored").And.Contain("did not load"));
    }

    [Test]
    public void This_process_uses_the_back_end_its_environment_asks_for()
    {
        string? setting = Environment.GetEnvironmentVariable(Zstd.BackendVariable);
        Assert.That(Zstd.Backend, Is.EqualTo(Zstd.ChooseBackend(setting, () => Zstd.IsUsable(ZstdBackend.Native), out _)));
        Assert.That(Zstd.IsAvailable, Is.True);
        string kind = Zstd.Backend == ZstdBackend.Native ? "native (libzstd.so.1)" : "managed (ZstdSharp.Port ";
        Assert.That(Zstd.Description, Does.StartWith($"zstd {Zstd.Version}, {kind}"));
    }

    [Test]
    public void Libzstd_is_usable_wherever_it_is_installed()
    {
        // Guards the binding: a failed probe would quietly send every process to the slower back end.
        if (!NativeLibrary.TryLoad("libzstd.so.1", out nint handle))
        {
            Assert.Ignore("libzstd.so.1 is not installed here");
        }
        NativeLibrary.Free(handle);
        Assert.That(Zstd.IsUsable(ZstdBackend.Native), Is.True, Zstd.Description);
    }
}
