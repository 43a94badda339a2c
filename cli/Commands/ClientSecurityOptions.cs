using System.CommandLine;
using GeoRelay.Transport.Security;

namespace GeoRelay.Cli;

/// <summary>The <c>--token-file</c> and <c>--ca</c> options that client commands (publish, tail) share.</summary>
internal sealed class ClientSecurityOptions
{
    public Option<string?> TokenFile { get; } = new("--token-file")
    {
        Description = "File holding the token from `georelay token` (or set GEORELAY_TOKEN); never given on the command line, where ps shows it",
    };

    public Option<string?> Ca { get; } = new("--ca") { Description = "CA certificate (PEM) to connect with TLS and check the server against" };

    public void AddTo(Command command)
    {
        command.Options.Add(TokenFile);
        command.Options.Add(Ca);
    }

    public string? Token(ParseResult parse)
    {
        if (parse.GetValue(TokenFile) is { } path) return File.ReadAllText(path).Trim();
        return Environment.GetEnvironmentVariable("GEORELAY_TOKEN") is { Length: > 0 } token ? token.Trim() : null;
    }

    public NodeTls? Tls(ParseResult parse) => parse.GetValue(Ca) is { } ca ? NodeTls.Load(ca, null, null) : null;
}
