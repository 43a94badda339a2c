using GeoRelay.Storage;
using GeoRelay.Tests.Unit.Storage;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.Consensus;

[TestFixture]
public sealed class TermVoteFileTests
{
    private TempDirectory _directory = null!;

    [SetUp]
    public void CreateDirectory() => _directory = new TempDirectory();

    [TearDown]
    public void DeleteDirectory() => _directory.Dispose();

    private TermVoteFile File() => new(_directory.Path);

    [Test]
    public void A_missing_file_is_term_zero_and_no_vote()
    {
        Assert.That(File().Load(), Is.EqualTo(new StoredTermVote(0, null)));
    }

    [TestCase(0UL, null)]
    [TestCase(1UL, "eu-m1")]
    [TestCase(ulong.MaxValue, "ünïcode-node")]
    [TestCase(42UL, null)]
    public void What_was_saved_is_what_a_new_instance_loads(ulong term, string? votedFor)
    {
        File().Save(7, "someone-else");
        File().Save(term, votedFor);
        Assert.That(File().Load(), Is.EqualTo(new StoredTermVote(term, votedFor)));
        Assert.That(Directory.GetFiles(_directory.Path), Is.EqualTo(new[] { System.IO.Path.Combine(_directory.Path, "term-vote") }),
            "the temporary file was renamed over the real one");
    }

    [Test]
    public void The_longest_id_round_trips_and_a_longer_one_is_refused_before_writing()
    {
        var longest = new string('n', TermVoteFile.MaxVotedForBytes);
        File().Save(3, longest);
        Assert.That(File().Load(), Is.EqualTo(new StoredTermVote(3, longest)));
        var e = Assert.Throws<ArgumentException>(() => File().Save(4, longest + "x"))!;
        Assert.That(e.Message, Does.Contain("over 255 UTF-8 bytes"));
        Assert.That(File().Load(), Is.EqualTo(new StoredTermVote(3, longest)), "the refused save changed nothing");
        Assert.Throws<ArgumentException>(() => File().Save(4, ""));
    }

    [Test]
    public void A_flipped_bit_at_every_offset_is_detected_and_named()
    {
        var file = File();
        file.Save(0x0102030405060708, "us-leader");
        var good = System.IO.File.ReadAllBytes(file.Path);
        for (int offset = 0; offset < good.Length; offset++)
        {
            for (int bit = 0; bit < 8; bit++)
            {
                var bad = (byte[])good.Clone();
                bad[offset] ^= (byte)(1 << bit);
                System.IO.File.WriteAllBytes(file.Path, bad);
                var e = Assert.Throws<InvalidDataException>(() => file.Load(), $"bit {bit} of byte {offset}")!;
                Assert.That(e.Message, Does.StartWith($"term-vote file '{file.Path}' "));
            }
        }
    }

    [Test]
    public void Each_kind_of_damage_says_what_is_wrong()
    {
        var file = File();
        file.Save(9, "eu-m2");
        var good = System.IO.File.ReadAllBytes(file.Path);

        string LoadError(byte[] bytes)
        {
            System.IO.File.WriteAllBytes(file.Path, bytes);
            return Assert.Throws<InvalidDataException>(() => file.Load())!.Message;
        }

        var magic = (byte[])good.Clone();
        magic[0] = (byte)'X';
        Assert.That(LoadError(magic), Does.Contain("magic bytes \"GRTV\""));

        var version = (byte[])good.Clone();
        version[4] = 2;
        Assert.That(LoadError(version), Does.Contain("format version 2; this build reads version 1 only"));

        var oversized = (byte[])good.Clone();
        oversized[14] = 0xFF;
        oversized[15] = 0xFF;
        Assert.That(LoadError(oversized), Does.Contain("voted-for id of 65535 bytes, over the maximum of 255"));

        var checksum = (byte[])good.Clone();
        checksum[^1] ^= 1;
        Assert.That(LoadError(checksum), Does.Contain("fails its checksum"));

        Assert.That(LoadError(new byte[1000]), Does.Contain("is 1000 bytes; a term-vote file is at most 275"));
        Assert.That(LoadError([.. good, 0]), Does.Contain("truncated or extended"));
    }

    [Test]
    public void Every_truncation_is_detected()
    {
        var file = File();
        file.Save(5, "ap-m3");
        var good = System.IO.File.ReadAllBytes(file.Path);
        for (int length = 0; length < good.Length; length++)
        {
            System.IO.File.WriteAllBytes(file.Path, good[..length]);
            var e = Assert.Throws<InvalidDataException>(() => file.Load(), $"{length} of {good.Length} bytes")!;
            Assert.That(e.Message, Does.Contain("truncated"));
        }
    }

    [Test]
    public void A_leftover_temporary_file_from_a_crashed_save_is_ignored_and_replaced()
    {
        var file = File();
        file.Save(2, "a");
        System.IO.File.WriteAllBytes(file.Path + ".tmp", [1, 2, 3]);
        Assert.That(file.Load(), Is.EqualTo(new StoredTermVote(2, "a")));
        file.Save(3, null);
        Assert.That(file.Load(), Is.EqualTo(new StoredTermVote(3, null)));
        Assert.That(System.IO.File.Exists(file.Path + ".tmp"), Is.False);
    }

    [Test]
    public void A_write_that_fails_is_a_disk_failure_naming_the_file_and_leaves_the_old_state()
    {
        Assume.That(System.IO.File.Exists("/dev/full"), "needs /dev/full (Linux)");
        var file = File();
        file.Save(4, "m1");
        // The temporary file is /dev/full: every write to it fails with ENOSPC.
        System.IO.File.CreateSymbolicLink(file.Path + ".tmp", "/dev/full");
        var e = Assert.Throws<DiskFailedException>(() => file.Save(5, "m2"))!;
        Assert.That(e.Operation, Is.EqualTo("write"));
        Assert.That(e.Path, Is.EqualTo(file.Path + ".tmp"));
        Assert.That(e.Error, Does.Contain("No space left on device"));
        Assert.That(file.Load(), Is.EqualTo(new StoredTermVote(4, "m1")), "the failed save did not replace the file");
    }
}
