using System.Text;
using GeoRelay.LearnerClient;
using GeoRelay.LearnerClient.Internal;
using GeoRelay.Tests.Unit.Storage;
using Microsoft.Extensions.Logging.Abstractions;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.StateMachine;

/// <summary>The checkpoint side of <see cref="LearnerClient.RunAsync"/>: restore, the apply guard, and the cadence.</summary>
[TestFixture]
public sealed class StateMachineRunTests
{
    private TempDirectory _directory = null!;

    [SetUp]
    public void CreateDirectory() => _directory = new TempDirectory();

    [TearDown]
    public void DeleteDirectory() => _directory.Dispose();

    /// <summary>Remembers every payload applied, in order; its snapshot is the applied index and those payloads.</summary>
    private sealed class Journal : IStateMachine
    {
        public List<string> Applied { get; private set; } = new();
        public int SnapshotsWritten { get; private set; }
        public ulong AppliedIndex { get; set; }

        public void Apply(LearnerEntry entry)
        {
            Applied.Add(Encoding.UTF8.GetString(entry.Payload.Span));
            AppliedIndex = entry.Index;
        }

        public void WriteSnapshot(Stream destination)
        {
            SnapshotsWritten++;
            using var writer = new BinaryWriter(destination, Encoding.UTF8, leaveOpen: true);
            writer.Write(AppliedIndex);
            writer.Write(string.Join('\n', Applied));
        }

        public void ReadSnapshot(Stream source)
        {
            using var reader = new BinaryReader(source, Encoding.UTF8, leaveOpen: true);
            AppliedIndex = reader.ReadUInt64();
            string text = reader.ReadString();
            Applied = text.Length == 0 ? new() : text.Split('\n').ToList();
        }
    }

    private StateMachineRun Checkpoints(IStateMachine machine, int every = 3) =>
        new(machine, StateMachineOptions.Default with { CheckpointDirectory = _directory.Path, CheckpointEveryEntries = every, CheckpointInterval = TimeSpan.FromHours(1) },
            NullLogger.Instance);

    private static LearnerEntry Entry(ulong index) =>
        new(index, 1, DateTimeOffset.UnixEpoch, ReadOnlyMemory<byte>.Empty, Encoding.UTF8.GetBytes($"e{index}"));

    [Test]
    public void Without_a_checkpoint_it_resumes_after_the_state_machines_own_index()
    {
        var machine = new Journal { AppliedIndex = 41 };
        Assert.That(Checkpoints(machine).Restore(), Is.EqualTo(41UL));
    }

    [Test]
    public void A_restart_restores_the_last_checkpoint_and_resumes_after_it()
    {
        var first = new Journal();
        var checkpoints = Checkpoints(first);
        checkpoints.Restore();
        // Indexes skip (internal entries): 1, 2, 4 make a checkpoint at 4; 5 and 7 come after it.
        foreach (ulong i in new ulong[] { 1, 2, 4, 5, 7 }) checkpoints.Apply(Entry(i));
        Assert.That(first.SnapshotsWritten, Is.EqualTo(1));

        // A crash: what came after the checkpoint is applied again by the next run, onto the checkpoint's state.
        var second = new Journal();
        Assert.That(Checkpoints(second).Restore(), Is.EqualTo(4UL));
        Assert.That(second.Applied, Is.EqualTo(new[] { "e1", "e2", "e4" }));
    }

    [Test]
    public void A_clean_stop_checkpoints_what_was_applied_since_the_last_checkpoint()
    {
        var first = new Journal();
        var checkpoints = Checkpoints(first);
        checkpoints.Restore();
        foreach (ulong i in new ulong[] { 1, 2, 3, 4 }) checkpoints.Apply(Entry(i));
        checkpoints.WriteIfPending();
        checkpoints.WriteIfPending();
        Assert.That(first.SnapshotsWritten, Is.EqualTo(2), "one at 3 entries, one at the stop, none when nothing is new");
        var second = new Journal();
        Assert.That(Checkpoints(second).Restore(), Is.EqualTo(4UL));
        Assert.That(second.Applied, Is.EqualTo(new[] { "e1", "e2", "e3", "e4" }));
    }

    [Test]
    public void An_index_not_above_the_applied_one_is_refused_and_not_applied()
    {
        var machine = new Journal();
        var checkpoints = Checkpoints(machine);
        checkpoints.Restore();
        checkpoints.Apply(Entry(5));
        var e = Assert.Throws<InvalidOperationException>(() => checkpoints.Apply(Entry(5)))!;
        Assert.That(e.Message, Does.Contain("entry 5 arrived after entry 5 was applied"));
        Assert.Throws<InvalidOperationException>(() => checkpoints.Apply(Entry(4)));
        Assert.That(machine.Applied, Is.EqualTo(new[] { "e5" }));
    }

    /// <summary>A state machine whose snapshot leaves out its applied index.</summary>
    private sealed class Forgetful : IStateMachine
    {
        public ulong AppliedIndex { get; private set; }
        public void Apply(LearnerEntry entry) => AppliedIndex = entry.Index;
        public void WriteSnapshot(Stream destination) => destination.WriteByte(0);
        public void ReadSnapshot(Stream source) => source.ReadByte();
    }

    [Test]
    public void A_state_machine_that_loses_its_applied_index_in_the_snapshot_is_refused_at_restore()
    {
        var checkpoints = Checkpoints(new Forgetful(), every: 1);
        checkpoints.Restore();
        checkpoints.Apply(Entry(8));
        var e = Assert.Throws<InvalidOperationException>(() => Checkpoints(new Forgetful()).Restore())!;
        Assert.That(e.Message, Does.Contain("AppliedIndex is 0 after ReadSnapshot of checkpoint"));
        Assert.That(e.Message, Does.Contain("written at index 8"));
    }

    [Test]
    public void A_state_machine_that_does_not_move_its_applied_index_is_refused_at_apply()
    {
        var stuck = new StuckIndex();
        var stuckCheckpoints = Checkpoints(stuck);
        stuckCheckpoints.Restore();
        var e = Assert.Throws<InvalidOperationException>(() => stuckCheckpoints.Apply(Entry(3)))!;
        Assert.That(e.Message, Does.Contain("AppliedIndex is 0 after Apply of entry 3"));
    }

    private sealed class StuckIndex : IStateMachine
    {
        public ulong AppliedIndex => 0;
        public void Apply(LearnerEntry entry) { }
        public void WriteSnapshot(Stream destination) { }
        public void ReadSnapshot(Stream source) { }
    }

    [Test]
    public void Options_name_the_bad_property()
    {
        Assert.That(Assert.Throws<ArgumentException>(() => (StateMachineOptions.Default with { CheckpointEveryEntries = 0 }).Validate())!.ParamName,
            Is.EqualTo(nameof(StateMachineOptions.CheckpointEveryEntries)));
        Assert.That(Assert.Throws<ArgumentException>(() => (StateMachineOptions.Default with { CheckpointInterval = TimeSpan.Zero }).Validate())!.ParamName,
            Is.EqualTo(nameof(StateMachineOptions.CheckpointInterval)));
        Assert.That(Assert.Throws<ArgumentException>(() => (StateMachineOptions.Default with { CheckpointDirectory = "" }).Validate())!.ParamName,
            Is.EqualTo(nameof(StateMachineOptions.CheckpointDirectory)));
    }
}
