using System.CommandLine;
using System.Text;
using System.Threading.Channels;
using GeoRelay.Codec.Frames;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace GeoRelay.Cli;

// Inside the namespace: under GeoRelay.*, `LearnerClient` alone would name the namespace GeoRelay.LearnerClient.
using GeoRelay.LearnerClient;

/// <summary>`georelay publish`: stdin lines become entries; exits 0 once every line is accepted (or committed).</summary>
public static class PublishCommand
{
    /// <summary>At most this many lines per request; fewer when fewer are waiting (natural batching).</summary>
    private const int LinesPerRequest = 512;
    /// <summary>Lines read ahead of the requests: bounds what a fast producer on stdin makes this process hold.</summary>
    private const int LinesReadAhead = 8 * LinesPerRequest;
    // Requests this command keeps outstanding; the client's own window bounds what is on the wire.
    private const int MaxOutstanding = 64;

    public static Command Create()
    {
        var leader = new Option<string>("--connect", "--leader")
        {
            Description = "Publish addresses, HOST:PORT, comma-separated: the first that takes publishes is used (with elections, list every voter's: those that do not lead refuse, naming the leader, and the command follows the leader when it changes). --leader is the old spelling",
            Required = true,
        };
        var reconnectTimeout = DurationOption.Create("--reconnect-timeout",
            "How long to look for a leader after the connection closes (what was not acknowledged is sent again, never appended twice); 0 for no reconnect",
            PublisherClientOptions.Default.ReconnectTimeout);
        var wait = new Option<string>("--wait") { Description = "accepted (durable on the leader) or committed (durable on a quorum)", DefaultValueFactory = _ => "accepted" };
        wait.AcceptOnlyFromAmong("accepted", "committed");
        var key = new Option<string?>("--key") { Description = "Key of every entry (UTF-8); default none" };
        var exactlyOnce = new Option<bool>("--exactly-once")
        {
            Description = "Number the requests under a producer id so a request sent again is never appended twice (one internal log entry per request); --exactly-once false to leave it out",
            DefaultValueFactory = _ => true,
        };
        var command = new Command("publish", "Publish stdin, one entry per line; exit codes: 1 no endpoint answered or a publish failed, "
            + ClientExitCodes.RefusalsHelp) { leader, wait, key, reconnectTimeout, exactlyOnce };
        var security = new ClientSecurityOptions();
        security.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            PublisherClientOptions options;
            try
            {
                options = PublisherClientOptions.Default with
                {
                    Endpoints = parse.GetValue(leader)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
                    AuthToken = security.Token(parse),
                    TlsCaFile = parse.GetValue(security.Ca),
                    ReconnectTimeout = parse.GetValue(reconnectTimeout),
                    ExactlyOnce = parse.GetValue(exactlyOnce),
                };
                options.Validate();
            }
            catch (ArgumentException e)
            {
                Console.Error.WriteLine($"{(e.ParamName == nameof(PublisherClientOptions.ReconnectTimeout) ? "--reconnect-timeout" : "--connect")}: {e.Message}");
                return 2;
            }
            var level = parse.GetValue(wait) == "committed" ? WaitLevel.Committed : WaitLevel.Accepted;
            var entryKey = parse.GetValue(key) is { } k ? Encoding.UTF8.GetBytes(k) : ReadOnlyMemory<byte>.Empty;
            // The client's reconnects and failures, on stderr: stdout stays free for a caller's pipe.
            using var logging = LoggerFactory.Create(b =>
            {
                b.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss.fff "; });
                b.Services.Configure<ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
            });
            try
            {
                await using var client = await PublisherClient.ConnectAsync(options, logging.CreateLogger("GeoRelay.Publish"), ct);
                // Natural batching: a request leaves as soon as a line is there, with every line that arrived meanwhile
                // (up to LinesPerRequest). A line typed by hand goes at once; a fast pipe still fills whole requests.
                var input = Channel.CreateBounded<string>(new BoundedChannelOptions(LinesReadAhead) { SingleReader = true, SingleWriter = true });
                var reading = Task.Run(async () =>
                {
                    try
                    {
                        string? read;
                        while ((read = await Console.In.ReadLineAsync(ct)) is not null) await input.Writer.WriteAsync(read, ct);
                        input.Writer.Complete();
                    }
                    catch (Exception e)
                    {
                        input.Writer.Complete(e);
                    }
                }, ct);
                var outstanding = new Queue<ValueTask<PublishResult>>();
                var batch = new List<PublishEntry>(LinesPerRequest);
                long lines = 0;
                ulong last = 0;
                while (await input.Reader.WaitToReadAsync(ct))
                {
                    while (batch.Count < LinesPerRequest && input.Reader.TryRead(out var line))
                        batch.Add(new PublishEntry(entryKey, Encoding.UTF8.GetBytes(line)));
                    lines += batch.Count;
                    outstanding.Enqueue(client.PublishAsync(batch, level, ct));
                    batch.Clear(); // the client copied the entries
                    if (outstanding.Count >= MaxOutstanding) last = Math.Max(last, (await outstanding.Dequeue()).LastIndex);
                    // Acknowledged requests are collected as they complete, so a slow trickle of lines holds nothing back.
                    while (outstanding.Count > 0 && outstanding.Peek().IsCompleted) last = Math.Max(last, (await outstanding.Dequeue()).LastIndex);
                }
                await reading;
                while (outstanding.Count > 0) last = Math.Max(last, (await outstanding.Dequeue()).LastIndex);
                Console.Error.WriteLine($"published {lines} entries ({level.ToString().ToLowerInvariant()}), last index {last}");
            }
            catch (ClientRefusedException e)
            {
                return ClientExitCodes.Report(e, Console.Error);
            }
            catch (PublishFailedException e) when (e.InnerException is ClientRefusedException refused)
            {
                return ClientExitCodes.Report(refused, Console.Error);
            }
            catch (Exception e) when (e is PublisherConnectException or PublishFailedException)
            {
                Console.Error.WriteLine(e.Message);
                return ClientExitCodes.Unreachable;
            }
            return 0;
        });
        return command;
    }
}
