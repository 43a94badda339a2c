using GeoRelay.Cli;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.Cli;

// The `georelay config` command lines docs/operations.md hands to operators.
[TestFixture]
public sealed class ConfigCommandLineTests
{
    private static IReadOnlyList<string> ErrorsOf(string line) =>
        GeoRelayCommandLine.Create().Parse(line).Errors.Select(e => e.Message).ToList();

    [TestCase("config show --admin 127.0.0.1:7103")]
    [TestCase("config diff --admin 127.0.0.1:7103 --config new.yaml")]
    [TestCase("config apply --admin 127.0.0.1:7103 --config new.yaml")]
    [TestCase("config apply --admin 7103 --config new.yaml --timeout 2m --token-file admin.token --ca certs/ca.crt")]
    public void TheDocumentedCommandLinesParse(string line) => Assert.That(ErrorsOf(line), Is.Empty);

    [TestCase("config apply --admin 127.0.0.1:7103", "--config")]
    [TestCase("config diff --config new.yaml", "--admin")]
    public void DiffAndApplyNeedTheFileAndAnAdminEndpoint(string line, string missing) =>
        Assert.That(ErrorsOf(line), Has.Some.Contains(missing));
}
