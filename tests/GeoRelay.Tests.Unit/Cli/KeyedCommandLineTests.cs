using System.CommandLine;
using GeoRelay.Cli;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.Cli;

// Command lines that `publish --keyed`, `state` and `tail --from-snapshot` refuse with exit code 2 before connecting.
[TestFixture]
public sealed class KeyedCommandLineTests
{
    private static async Task<(int Exit, string Error)> RunAsync(Command command, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = await command.Parse(args).InvokeAsync(new InvocationConfiguration { Output = output, Error = error });
        Assert.That(output.ToString(), Is.Empty, "nothing on stdout");
        return (exit, error.ToString().Trim());
    }

    [Test]
    public async Task PublishKeyedWithKeyIsAUsageError()
    {
        var (exit, error) = await RunAsync(PublishCommand.Create(), "--connect", "127.0.0.1:1", "--keyed", "--key", "k");
        Assert.That(exit, Is.EqualTo(2));
        Assert.That(error, Is.EqualTo("--keyed and --key: give one (--keyed takes each entry's key from its line)"));
    }

    [TestCase("5")]
    [TestCase("1")]
    public async Task TailFromSnapshotWithFromIsAUsageErrorEvenAtTheDefault(string from)
    {
        var (exit, error) = await RunAsync(TailCommand.Create(), "--connect", "127.0.0.1:1", "--from-snapshot", "--from", from);
        Assert.That(exit, Is.EqualTo(2));
        Assert.That(error, Is.EqualTo("--from-snapshot and --from: give one (--from-snapshot starts with the keyed state, then the stream after it)"));
    }

    [TestCase(new[] { "--dc", "eu-west" }, "--dc needs --config FILE (the topology that lists the datacenter's nodes)")]
    [TestCase(new string[0], "give the learner endpoints: --connect HOST:PORT[,...], --local HOST:PORT[,...], or --config FILE --dc NAME")]
    [TestCase(new[] { "--local", "10.0.0.1" }, "--local: '10.0.0.1' is not host:port")]
    public async Task StateTakesItsEndpointsAsTailDoes(string[] args, string message)
    {
        var (exit, error) = await RunAsync(StateCommand.Create(), args);
        Assert.That(exit, Is.EqualTo(2));
        Assert.That(error, Is.EqualTo(message));
    }

    [Test]
    public void StateIsACommandOfGeorelay()
    {
        var parse = GeoRelayCommandLine.Create().Parse(["state", "--connect", "127.0.0.1:7202", "--prefix", "orders/"]);
        Assert.That(parse.Errors, Is.Empty);
        Assert.That(parse.CommandResult.Command.Name, Is.EqualTo("state"));
    }
}
