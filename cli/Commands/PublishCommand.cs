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

/// <summary>
/// `georelay publish`: stdin lines become entries; exits 0 once every line is accepted (or committed). With `--keyed`
/// each line is <c>KEY&lt;TAB&gt;VALUE</c> or a key alone for its tombstone (<see cref="KeyedLineParser"/>); a line that
/// is neither ends the command with exit code 2 once the lines before it are published.
/// </summary>
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
        var keyed = new Option<bool>("--keyed")
        {
            Description = "Each line is KEY<TAB>VALUE (split at the first TAB; the value may hold more), or a key alone to publish its tombstone (delete); "
                + "an empty line or a key over 1024 bytes stops the command with exit code 2 after the lines before it are published",
        };
        var exactlyOnce = new Option<bool>("--exactly-once")
        {
            Description = "Number the requests under a producer id so a request sent again is never appended twice (one internal log entry per request); --exactly-once false to leave it out",
            DefaultValueFactory = _ => true,
        };
        var command = new Command("publish", "Publish stdin, one entry per line; exit codes: 1 no endpoint answered or a publish failed, "
            + ClientExitCodes.RefusalsHelp + ", 2 also for a --keyed line that is not an entry") { leader, wait, key, keyed, reconnectTimeout, exactlyOnce };
        var security = new ClientSecurityOptions();
        security.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var error = parse.InvocationConfiguration.Error;
            bool keyedLines = parse.GetValue(keyed);
            if (keyedLines && parse.GetValue(key) is not null)
            {
                error.WriteLine("--keyed and --key: give one (--keyed takes each entry's key from its line)");
                return 2;
            }
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
                error.WriteLine($"{(e.ParamName == nameof(PublisherClientOptions.ReconnectTimeout) ? "--reconnect-timeout" : "--connect")}: {e.Message}");
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
                using var stopReading = CancellationTokenSource.CreateLinkedTokenSource(ct);
                var readToken = stopReading.Token; // taken here: the reader may outlive stopReading after a bad line
                var reading = Task.Run(async () =>
                {
                    try
                    {
                        string? read;
                        while ((read = await Console.In.ReadLineAsync(readToken)) is not null) await input.Writer.WriteAsync(read, readToken);
                        input.Writer.Complete();
                    }
                    catch (Exception e)
                    {
                        input.Writer.Complete(e);
                    }
                }, readToken);
                var outstanding = new Queue<ValueTask<PublishResult>>();
                var batch = new List<PublishEntry>(LinesPerRequest);
                long lines = 0, tombstones = 0;
                ulong last = 0;
                string? badLine = null;
                while (badLine is null && await input.Reader.WaitToReadAsync(ct))
                {
                    while (batch.Count < LinesPerRequest && badLine is null && input.Reader.TryRead(out var line))
                    {
                        if (!keyedLines) batch.Add(new PublishEntry(entryKey, Encoding.UTF8.GetBytes(line)));
                        else if (KeyedLineParser.TryParse(line, lines + batch.Count + 1, out var entry, out var problem))
                        {
                            batch.Add(entry);
                            if (entry.IsTombstone) tombstones++;
                        }
                        else badLine = problem;
                    }
                    if (batch.Count == 0) break; // the first line waiting was the bad one
                    lines += batch.Count;
                    outstanding.Enqueue(client.PublishAsync(batch, level, ct));
                    batch.Clear(); // the client copied the entries
                    if (outstanding.Count >= MaxOutstanding) last = Math.Max(last, (await outstanding.Dequeue()).LastIndex);
                    // Acknowledged requests are collected as they complete, so a slow trickle of lines holds nothing back.
                    while (outstanding.Count > 0 && outstanding.Peek().IsCompleted) last = Math.Max(last, (await outstanding.Dequeue()).LastIndex);
                }
                // After a bad line nothing more is published: stop reading (a read blocked on a terminal is left to the process's exit).
                if (badLine is not null) stopReading.Cancel();
                else await reading;
                while (outstanding.Count > 0) last = Math.Max(last, (await outstanding.Dequeue()).LastIndex);
                string ofThem = keyedLines ? $" ({tombstones} of them tombstones)" : "";
                if (badLine is not null)
                {
                    error.WriteLine(badLine);
                    error.WriteLine($"published {lines} entries{ofThem} ({level.ToString().ToLowerInvariant()}), last index {last}; "
                        + $"nothing from line {lines + 1} on");
                    return 2;
                }
                error.WriteLine($"published {lines} entries{ofThem} ({level.ToString().ToLowerInvariant()}), last index {last}");
            }
            catch (ClientRefusedException e)
            {
                return ClientExitCodes.Report(e, error);
            }
            catch (PublishFailedException e) when (e.InnerException is ClientRefusedException refused)
            {
                return ClientExitCodes.Report(refused, error);
            }
            catch (Exception e) when (e is PublisherConnectException or PublishFailedException)
            {
                error.WriteLine(e.Message);
                return ClientExitCodes.Unreachable;
            }
            return 0;
        });
        return command;
    }
}
