using System.CommandLine;
using System.Text;
using GeoRelay.Codec.Frames;
using GeoRelay.Topology;

namespace GeoRelay.Cli;

/// <summary>`georelay publish`: stdin lines become entries; exits 0 once every line is accepted (or committed).</summary>
public static class PublishCommand
{
    private const int LinesPerRequest = 512;
    private const int MaxInFlight = 64;

    public static Command Create()
    {
        var leader = new Option<string>("--leader") { Description = "The leader's publish address, HOST:PORT", Required = true };
        var wait = new Option<string>("--wait") { Description = "accepted (durable on the leader) or committed (durable on a quorum)", DefaultValueFactory = _ => "accepted" };
        wait.AcceptOnlyFromAmong("accepted", "committed");
        var key = new Option<string?>("--key") { Description = "Key of every entry (UTF-8); default none" };
        var command = new Command("publish", "Publish stdin, one entry per line") { leader, wait, key };
        var security = new ClientSecurityOptions();
        security.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            if (!NodeEndpoint.TryParse(parse.GetValue(leader), out var endpoint, out var error))
            {
                Console.Error.WriteLine($"--leader: {error}");
                return 2;
            }
            var level = parse.GetValue(wait) == "committed" ? WaitLevel.Committed : WaitLevel.Accepted;
            var entryKey = parse.GetValue(key) is { } k ? Encoding.UTF8.GetBytes(k) : ReadOnlyMemory<byte>.Empty;
            using var tls = security.Tls(parse);
            await using var client = await PublishClient.ConnectAsync(endpoint.ToEndPoint(), ct, security.Token(parse), tls);
            var inFlight = new Queue<Task<PublishAck>>();
            var batch = new List<(ReadOnlyMemory<byte>, ReadOnlyMemory<byte>)>(LinesPerRequest);
            long lines = 0;
            ulong last = 0;
            string? line;
            while ((line = await Console.In.ReadLineAsync(ct)) is not null)
            {
                batch.Add((entryKey, Encoding.UTF8.GetBytes(line)));
                lines++;
                if (batch.Count == LinesPerRequest)
                {
                    inFlight.Enqueue(client.PublishAsync(batch, level));
                    batch = new(LinesPerRequest);
                    if (inFlight.Count >= MaxInFlight) last = Math.Max(last, Last(await inFlight.Dequeue()));
                }
            }
            if (batch.Count > 0) inFlight.Enqueue(client.PublishAsync(batch, level));
            while (inFlight.Count > 0) last = Math.Max(last, Last(await inFlight.Dequeue()));
            Console.Error.WriteLine($"published {lines} entries ({level.ToString().ToLowerInvariant()}), last index {last}");
            return 0;
        });
        return command;
    }

    private static ulong Last(PublishAck ack) => ack.FirstIndex + ack.Count - 1;
}
