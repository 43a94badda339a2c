using System.Buffers.Binary;
using GeoRelay.LearnerClient.Internal;
using GeoRelay.Storage;
using GeoRelay.Tests.Unit.Storage;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.StateMachine;

[TestFixture]
public sealed class CheckpointFileTests
{
    private TempDirectory _directory = null!;
    private string _path = null!;

    [SetUp]
    public void CreateDirectory()
    {
        _directory = new TempDirectory();
        _path = CheckpointFile.PathIn(_directory.Path);
    }

    [TearDown]
    public void DeleteDirectory() => _directory.Dispose();

    private static byte[] Snapshot(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private void Write(ulong applied, byte[] snapshot) => CheckpointFile.Write(_path, applied, s => s.Write(snapshot), fsync: false);

    private (ulong? Applied, byte[] Snapshot) Read()
    {
        byte[] read = [];
        ulong? applied = CheckpointFile.Read(_path, s =>
        {
            using var copy = new MemoryStream();
            s.CopyTo(copy);
            read = copy.ToArray();
        });
        return (applied, read);
    }

    [Test]
    public void No_file_is_no_checkpoint_and_the_snapshot_is_not_read()
    {
        bool called = false;
        Assert.That(CheckpointFile.Read(_path, _ => called = true), Is.Null);
        Assert.That(called, Is.False);
    }

    // 200,000 bytes: several of the file's and the checksum's 64 KiB chunks.
    [TestCase(0UL, 0)]
    [TestCase(1UL, 1)]
    [TestCase(12_345UL, 1000)]
    [TestCase(ulong.MaxValue, 200_000)]
    public void What_was_written_is_what_is_read_back(ulong applied, int snapshotLength)
    {
        Write(7, Snapshot(50, seed: 1));
        var snapshot = Snapshot(snapshotLength, seed: 2);
        Write(applied, snapshot);
        var (readApplied, readSnapshot) = Read();
        Assert.That(readApplied, Is.EqualTo(applied));
        Assert.That(readSnapshot, Is.EqualTo(snapshot));
        Assert.That(new FileInfo(_path).Length, Is.EqualTo(CheckpointFile.HeaderSize + snapshotLength + CheckpointFile.TrailerSize));
        Assert.That(Directory.GetFiles(_directory.Path), Is.EqualTo(new[] { _path }), "the temporary file was renamed over the checkpoint");
    }

    [Test]
    public void The_file_starts_with_its_magic_bytes_and_format_version()
    {
        Write(3, [1, 2, 3]);
        var bytes = File.ReadAllBytes(_path);
        Assert.That(System.Text.Encoding.ASCII.GetString(bytes, 0, 4), Is.EqualTo("GRCP"));
        Assert.That(BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(4)), Is.EqualTo(CheckpointFile.FormatVersion));
    }

    [Test]
    public void A_newer_format_version_is_refused_naming_the_file_and_both_versions()
    {
        Write(3, [1, 2, 3]);
        var bytes = File.ReadAllBytes(_path);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(4), 2);
        File.WriteAllBytes(_path, bytes);
        var e = Assert.Throws<InvalidDataException>(() => Read())!;
        Assert.That(e.Message, Does.Contain($"'{_path}'"));
        Assert.That(e.Message, Does.Contain("format version 2, newer than version 1"));
    }

    [Test]
    public void A_flipped_bit_at_every_offset_is_detected_and_names_the_file()
    {
        Write(0x0102030405060708, Snapshot(40, seed: 3));
        var good = File.ReadAllBytes(_path);
        for (int offset = 0; offset < good.Length; offset++)
        {
            for (int bit = 0; bit < 8; bit++)
            {
                var bad = (byte[])good.Clone();
                bad[offset] ^= (byte)(1 << bit);
                File.WriteAllBytes(_path, bad);
                bool handedOver = false;
                var e = Assert.Throws<InvalidDataException>(() => CheckpointFile.Read(_path, _ => handedOver = true), $"offset {offset} bit {bit}")!;
                Assert.That(e.Message, Does.StartWith($"checkpoint file '{_path}' "));
                Assert.That(handedOver, Is.False, "a damaged snapshot is never handed to the state machine");
            }
        }
    }

    [Test]
    public void A_truncated_or_extended_file_is_detected_at_every_length_and_says_so()
    {
        Write(9, Snapshot(64, seed: 4));
        var good = File.ReadAllBytes(_path);
        for (int length = 0; length < good.Length; length++)
        {
            File.WriteAllBytes(_path, good[..length]);
            var e = Assert.Throws<InvalidDataException>(() => Read(), $"{length} bytes")!;
            Assert.That(e.Message, Does.StartWith($"checkpoint file '{_path}' "));
            if (length >= CheckpointFile.HeaderSize)
                Assert.That(e.Message, Does.Contain("truncated"), $"{length} bytes: the header is whole, so it says how long the file should be");
        }
        File.WriteAllBytes(_path, [.. good, 0]);
        Assert.That(Assert.Throws<InvalidDataException>(() => Read())!.Message, Does.Contain("extended"));
    }

    [Test]
    public void A_leftover_temporary_file_is_ignored_and_replaced_by_the_next_write()
    {
        Write(5, [5, 5]);
        File.WriteAllBytes(AtomicFile.TemporaryPath(_path), Snapshot(10, seed: 5)); // a crash before the rename
        Assert.That(Read(), Is.EqualTo(((ulong?)5, new byte[] { 5, 5 })));
        Write(6, [6]);
        Assert.That(Read(), Is.EqualTo(((ulong?)6, new byte[] { 6 })));
        Assert.That(File.Exists(AtomicFile.TemporaryPath(_path)), Is.False);
    }

    [Test]
    public void A_snapshot_writer_that_throws_leaves_the_previous_checkpoint()
    {
        Write(5, [5, 5]);
        Assert.Throws<InvalidOperationException>(() => CheckpointFile.Write(_path, 6, s =>
        {
            s.Write([6, 6, 6]);
            throw new InvalidOperationException("the state machine failed half way");
        }, fsync: false));
        Assert.That(Read(), Is.EqualTo(((ulong?)5, new byte[] { 5, 5 })));
    }

    [Test]
    public void The_snapshot_stream_ends_where_the_snapshot_ends()
    {
        Write(2, [1, 2, 3]);
        CheckpointFile.Read(_path, s =>
        {
            var buffer = new byte[16];
            Assert.That(s.Read(buffer), Is.EqualTo(3));
            Assert.That(s.Read(buffer), Is.Zero, "the checksum after the snapshot is not part of it");
            Assert.That(s.ReadByte(), Is.EqualTo(-1));
        });
    }
}
