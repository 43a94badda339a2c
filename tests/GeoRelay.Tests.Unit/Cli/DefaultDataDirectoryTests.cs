using GeoRelay.Cli;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.Cli;

// Daemons kept their log in $TMPDIR/georelay/<node> without --data: a reboot emptied a member's log.
[TestFixture]
public sealed class DefaultDataDirectoryTests
{
    private static DefaultDataDirectory.Choice? Resolve(bool isRoot, out string? problem, params (string Name, string Value)[] environment)
    {
        var env = environment.ToDictionary(e => e.Name, e => e.Value);
        return DefaultDataDirectory.Resolve("prod-eu", "m1", name => env.GetValueOrDefault(name), isRoot, out problem);
    }

    [Test]
    public void XdgStateHomeComesFirst()
    {
        var choice = Resolve(isRoot: true, out _, ("XDG_STATE_HOME", "/srv/state"), ("HOME", "/home/op"));
        Assert.That(choice, Is.EqualTo(new DefaultDataDirectory.Choice("/srv/state/georelay/prod-eu/m1", "$XDG_STATE_HOME")));
    }

    [Test]
    public void RootGetsVarLib()
    {
        var choice = Resolve(isRoot: true, out _, ("HOME", "/root"));
        Assert.That(choice?.Path, Is.EqualTo("/var/lib/georelay/prod-eu/m1"));
    }

    [Test]
    public void AnyOtherUserGetsTheXdgDefaultUnderHome()
    {
        // A relative XDG_STATE_HOME is invalid by the XDG spec and ignored.
        var choice = Resolve(isRoot: false, out _, ("XDG_STATE_HOME", "state"), ("HOME", "/home/op"));
        Assert.That(choice?.Path, Is.EqualTo("/home/op/.local/state/georelay/prod-eu/m1"));
    }

    [Test]
    public void WithoutAnyOfThemTheDaemonAsksForDataInsteadOfUsingTheTempDirectory()
    {
        var choice = Resolve(isRoot: false, out var problem);
        Assert.That(choice, Is.Null);
        Assert.That(problem, Does.Contain("--data"));
    }

    [Test]
    public void ClusterAndNodeNamesCannotLeaveTheStateDirectory()
    {
        var choice = DefaultDataDirectory.Resolve("../etc", "a/b", _ => null, isRoot: true, out _);
        Assert.That(choice?.Path, Is.EqualTo("/var/lib/georelay/.._etc/a_b"));
    }
}
