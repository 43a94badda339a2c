using System.Runtime.InteropServices;
using System.Text;
using GeoRelay.Cli;
using GeoRelay.LearnerClient;
using GeoRelay.Samples.KvMirror;

// kv-mirror: keeps the last value of every key of a GeoRelay log, checkpointed in a directory.
//   kv-mirror --connect HOST:PORT[,HOST:PORT...] --checkpoints DIR [--checkpoint-every N] [--applied-log FILE]
//   kv-mirror --checkpoints DIR --dump        prints the checkpoint's state as KEY<TAB>VALUE lines, keys in byte order

const string Usage = "usage: kv-mirror --connect HOST:PORT[,...] --checkpoints DIR [--checkpoint-every N] [--applied-log FILE]\n" +
                     "       kv-mirror --checkpoints DIR --dump";
string? connect = null, checkpoints = null, appliedLog = null;
bool dump = false;
int checkpointEvery = StateMachineOptions.Default.CheckpointEveryEntries;
for (int i = 0; i < args.Length; i++)
{
    if (args[i] is "--connect" or "--checkpoints" or "--applied-log" or "--checkpoint-every" && i + 1 == args.Length) return Fail($"{args[i]} needs a value\n{Usage}");
    string Value() => args[++i];
    switch (args[i])
    {
        case "--connect": connect = Value(); break;
        case "--checkpoints": checkpoints = Value(); break;
        case "--applied-log": appliedLog = Value(); break;
        case "--dump": dump = true; break;
        case "--checkpoint-every":
            string every = Value();
            if (!int.TryParse(every, out checkpointEvery) || checkpointEvery < 1)
                return Fail($"--checkpoint-every takes a positive number of entries, not '{every}'");
            break;
        default: return Fail($"unknown argument '{args[i]}'\n{Usage}");
    }
}
if (checkpoints is null) return Fail($"--checkpoints DIR is required\n{Usage}");
var options = StateMachineOptions.Default with { CheckpointDirectory = checkpoints, CheckpointEveryEntries = checkpointEvery };

if (dump)
{
    var saved = new KeyValueMirror();
    if (StateMachineCheckpoint.Restore(saved, checkpoints) is null) return Fail($"no checkpoint in {Path.GetFullPath(checkpoints)}");
    var stdout = new StreamWriter(Console.OpenStandardOutput(), new UTF8Encoding(false));
    foreach (var (key, value) in saved.Sorted()) stdout.Write($"{KeyValueText.Escape(key)}\t{KeyValueText.Escape(value)}\n");
    stdout.Flush();
    return 0;
}
if (connect is null) return Fail($"--connect HOST:PORT[,...] is required\n{Usage}");

// One write per applied index, no fsync: a SIGKILL ends the process, not the kernel, so every line written stays.
using var log = appliedLog is null ? null : new StreamWriter(new FileStream(appliedLog, FileMode.Append, FileAccess.Write, FileShare.Read, bufferSize: 0)) { AutoFlush = true };
long lastPrinted = 0;
bool firstOfRun = true;
KeyValueMirror mirror = null!;
mirror = new KeyValueMirror
{
    Applied = (previous, index) =>
    {
        // Each run's part of the log starts with where it resumed: the checkpoint's index (0: none).
        if (firstOfRun) log?.WriteLine($"from {previous}");
        firstOfRun = false;
        log?.WriteLine(index);
        if (Environment.TickCount64 - lastPrinted < 1000) return;
        lastPrinted = Environment.TickCount64;
        Console.WriteLine($"applied {index}, {mirror.Count} keys");
    },
};

using var stop = new CancellationTokenSource();
using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => { context.Cancel = true; stop.Cancel(); });
using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => { context.Cancel = true; stop.Cancel(); });
try
{
    var endpoints = connect.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    await using var learner = new LearnerClient(LearnerClientOptions.Default with { Endpoints = endpoints });
    Console.WriteLine($"kv-mirror: checkpoints in {Path.GetFullPath(checkpoints)}, following {connect}");
    await learner.RunAsync(mirror, options, stop.Token);
    Console.WriteLine($"stopped at index {mirror.AppliedIndex}, {mirror.Count} keys");
    return 0;
}
catch (SnapshotRequiredException e)
{
    return Fail($"{e.Message}: the cluster no longer holds what follows this mirror's checkpoint; start it on an empty directory", 3);
}
catch (Exception e) when (e is InvalidDataException or ClientRefusedException)
{
    return Fail(e.Message);
}

static int Fail(string message, int code = 1)
{
    Console.Error.WriteLine($"error: {message}");
    return code;
}
