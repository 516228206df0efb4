//! The replay queue: reports the engine did not acknowledge, kept on disk until it does.
//!
//! # Format
//! A directory (`--queue-dir`, default `/var/lib/hearth-sensor-agent/queue`, systemd's
//! `StateDirectory=hearth-sensor-agent`) holding:
//! - `NNNNNNNNNNNNNNNNNNNN.seg` segment files (20-digit sequence number, oldest = smallest), each
//!   a run of records `[len: u32 LE][crc: u32 LE][payload: len bytes]`, where `crc` is the
//!   CRC-32 (IEEE) of the four length bytes followed by the payload, and the payload is one
//!   report as JSON (a seed-contract `SensorUpdate`, every reading with its timestamp);
//! - `head`: `"<segment> <byte offset>\n"`, the first record not yet acknowledged by the engine;
//! - `lock`: held with an exclusive `flock` while an agent uses the directory, so two agents
//!   never interleave their records.
//!
//! # Invariants
//! - Append-only: a record is written with one `write` and `fdatasync`ed before [`Queue::push`]
//!   returns, so a reading survives an agent crash or a power cut once it is queued. A power cut
//!   during the write leaves a torn tail record: its length or CRC does not check, and opening the
//!   queue truncates the newest segment back to its last good record. A bad record inside an
//!   older segment (bit rot) ends the replay of that segment; both are logged and counted.
//! - Only the newest segment is written; acknowledged segments are deleted whole. The acknowledged
//!   prefix moves only after the engine's 2xx ([`Queue::ack`]). `head` is replaced by rename
//!   without fsync: if a power cut loses the newest `head`, the agent re-sends records the engine
//!   already has, which it stores once (readings are unique per sensor and timestamp).
//! - Bounded: when the segment files together exceed `--queue-max-bytes`, the OLDEST segment is
//!   deleted and its readings are counted and logged as lost. The newest readings matter most to
//!   a thermostat and to its charts, and the queue never refuses the current reading. Segments
//!   are 1/16 of the cap (4 KiB to 256 KiB), so one drop loses at most that share.
//!
//! # SD-card wear
//! Nothing is written while the engine acknowledges readings. During an outage every interval
//! appends one record (~250 bytes with two sensors) and one `fdatasync`: about 8,640 small
//! writes a day at 10 s, far below what an SD card's wear levelling handles for years. Replay
//! only reads, renames `head` once per acknowledged batch and deletes segments.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Bytes of a record header: length and CRC.
const HEADER: u64 = 8;
/// A longer record is corruption, not a report (a report of 64 sensors is ~10 KiB).
pub const MAX_RECORD: usize = 64 * 1024;
/// Smallest accepted `--queue-max-bytes`.
pub const MIN_MAX_BYTES: u64 = 64 * 1024;
/// Default `--queue-max-bytes`: 32 MiB. A report of two DS18B20s with aliases is ~260 bytes as
/// a record, so a week at 10 s (60,480 reports) takes ~16 MiB: the default holds about two weeks.
pub const DEFAULT_MAX_BYTES: u64 = 32 * 1024 * 1024;
const SEGMENT_SUFFIX: &str = ".seg";

/// A position in the queue: a segment and a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    seq: u64,
    offset: u64,
}

/// One segment file.
#[derive(Debug)]
struct Segment {
    seq: u64,
    /// Bytes of valid records (the file may be longer when an older segment has a bad record).
    valid: u64,
    /// Size on disk, for the cap.
    disk: u64,
    /// Valid records in the segment.
    records: u64,
}

/// Records read for replay, each with the position just after it (what to acknowledge).
#[derive(Debug, Default)]
pub struct Batch {
    /// Payloads, oldest first, with the position after each.
    pub records: Vec<(Pos, Vec<u8>)>,
    /// Where the batch ends: acknowledging this also skips unreadable bytes read past.
    pub end: Option<Pos>,
}

/// What happened in [`Queue::push`] beyond the append.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PushOutcome {
    /// Queued reports deleted to stay under the cap (oldest first).
    pub dropped: u64,
}

/// The on-disk queue. Not thread-safe: one owner (the report loop).
#[derive(Debug)]
pub struct Queue {
    dir: PathBuf,
    /// Held for the lifetime of the queue (exclusive flock).
    _lock: File,
    segments: VecDeque<Segment>,
    /// The first unacknowledged record. Always inside the first segment, or at its start.
    head: Pos,
    /// Records of the head segment before `head` (acknowledged, not yet deleted).
    head_done: u64,
    writer: Option<File>,
    next_seq: u64,
    max_bytes: u64,
    segment_bytes: u64,
}

impl Queue {
    /// Open (creating if needed) the queue in `dir`, capped at `max_bytes` on disk. Repairs a
    /// torn tail. Fails when the directory cannot be created or written, or another agent holds
    /// it.
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let lock =
            OpenOptions::new().create(true).truncate(false).write(true).open(dir.join("lock"))?;
        lock.try_lock().map_err(|e| match e {
            std::fs::TryLockError::WouldBlock => io::Error::new(
                io::ErrorKind::WouldBlock,
                "another hearth-sensor-agent is using this queue directory",
            ),
            std::fs::TryLockError::Error(e) => e,
        })?;
        let mut seqs: Vec<u64> = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some(seq) = name.strip_suffix(SEGMENT_SUFFIX).and_then(|s| s.parse().ok()) {
                seqs.push(seq);
            }
        }
        seqs.sort_unstable();
        let last = seqs.last().copied();
        let mut segments = VecDeque::new();
        for seq in seqs {
            let path = segment_path(dir, seq);
            let scan = scan(&path, None)?;
            if scan.valid < scan.disk {
                if Some(seq) == last {
                    tracing::warn!(
                        segment = %path.display(),
                        bytes = scan.disk - scan.valid,
                        "ignoring a torn record at the end of the queue (power lost while writing?)"
                    );
                    OpenOptions::new().write(true).open(&path)?.set_len(scan.valid)?;
                } else {
                    tracing::warn!(
                        segment = %path.display(),
                        bytes = scan.disk - scan.valid,
                        "a queued segment has an unreadable record; the rest of it is lost"
                    );
                }
            }
            let disk = if Some(seq) == last { scan.valid } else { scan.disk };
            if scan.records == 0 {
                std::fs::remove_file(&path)?;
                continue;
            }
            segments.push_back(Segment { seq, valid: scan.valid, disk, records: scan.records });
        }
        let next_seq = last.map_or(1, |s| s + 1);
        let mut queue = Self {
            dir: dir.to_owned(),
            _lock: lock,
            segments,
            head: Pos { seq: 0, offset: 0 },
            head_done: 0,
            writer: None,
            next_seq,
            max_bytes: max_bytes.max(MIN_MAX_BYTES),
            segment_bytes: (max_bytes / 16).clamp(4 * 1024, 256 * 1024),
        };
        queue.load_head()?;
        Ok(queue)
    }

    /// The directory of the queue.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reports waiting for the engine.
    pub fn len(&self) -> u64 {
        self.segments.iter().map(|s| s.records).sum::<u64>() - self.head_done
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the segment files take on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.disk).sum()
    }

    /// Append one report and sync it to disk; then delete the oldest segments while the queue
    /// is over its cap (never the one just written).
    pub fn push(&mut self, payload: &[u8]) -> io::Result<PushOutcome> {
        if payload.len() > MAX_RECORD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a report of {} bytes is too large to queue", payload.len()),
            ));
        }
        let rotate = self.segments.back().is_none_or(|s| s.disk >= self.segment_bytes);
        if rotate || self.writer.is_none() {
            if rotate {
                let seq = self.next_seq;
                let file = OpenOptions::new()
                    .create_new(true)
                    .append(true)
                    .open(segment_path(&self.dir, seq))?;
                // The new name must survive a power cut too, not just the bytes in it.
                File::open(&self.dir)?.sync_all()?;
                self.next_seq += 1;
                if self.segments.is_empty() {
                    self.head = Pos { seq, offset: 0 };
                    self.head_done = 0;
                }
                self.segments.push_back(Segment { seq, valid: 0, disk: 0, records: 0 });
                self.writer = Some(file);
            } else if let Some(last) = self.segments.back() {
                let path = segment_path(&self.dir, last.seq);
                self.writer = Some(OpenOptions::new().append(true).open(path)?);
            }
        }
        let (Some(file), Some(last)) = (self.writer.as_mut(), self.segments.back_mut()) else {
            return Err(io::Error::other("queue has no segment to write"));
        };
        let len = (payload.len() as u32).to_le_bytes();
        let mut record = Vec::with_capacity(HEADER as usize + payload.len());
        record.extend_from_slice(&len);
        record.extend_from_slice(&crc32(&[&len, payload]).to_le_bytes());
        record.extend_from_slice(payload);
        if let Err(e) = file.write_all(&record).and_then(|()| file.sync_data()) {
            // A partial write would sit before the next record: cut it off now rather than at
            // the next start.
            let _ = file.set_len(last.valid);
            return Err(e);
        }
        last.valid += record.len() as u64;
        last.disk = last.valid;
        last.records += 1;

        let mut outcome = PushOutcome::default();
        while self.disk_bytes() > self.max_bytes && self.segments.len() > 1 {
            let Some(oldest) = self.segments.pop_front() else { break };
            let lost =
                oldest.records - if oldest.seq == self.head.seq { self.head_done } else { 0 };
            outcome.dropped += lost;
            std::fs::remove_file(segment_path(&self.dir, oldest.seq))?;
            if let Some(next) = self.segments.front() {
                self.head = Pos { seq: next.seq, offset: 0 };
                self.head_done = 0;
            }
            self.save_head();
        }
        Ok(outcome)
    }

    /// Up to `max` of the oldest unacknowledged reports. Reading does not consume them.
    pub fn read_batch(&self, max: usize) -> io::Result<Batch> {
        let mut batch = Batch::default();
        let mut pos = self.head;
        for seg in &self.segments {
            if batch.records.len() >= max {
                break;
            }
            if seg.seq < pos.seq {
                continue;
            }
            let start = if seg.seq == pos.seq { pos.offset } else { 0 };
            let mut file = File::open(segment_path(&self.dir, seg.seq))?;
            file.seek(SeekFrom::Start(start))?;
            let mut reader = BufReader::with_capacity(8 * 1024, file);
            let mut offset = start;
            while offset < seg.valid && batch.records.len() < max {
                match read_record(&mut reader, seg.valid - offset)? {
                    Some(payload) => {
                        offset += HEADER + payload.len() as u64;
                        batch.records.push((Pos { seq: seg.seq, offset }, payload));
                    }
                    None => {
                        // Changed on disk since it was opened: the rest of the segment is lost.
                        tracing::warn!(segment = seg.seq, offset, "unreadable queued record");
                        offset = seg.valid;
                    }
                }
            }
            pos = Pos { seq: seg.seq, offset };
            batch.end = Some(pos);
        }
        Ok(batch)
    }

    /// The engine acknowledged everything before `pos`: forget it. Positions that are already
    /// behind the head (dropped by the cap meanwhile) are ignored.
    pub fn ack(&mut self, pos: Pos) -> io::Result<()> {
        if pos <= self.head {
            return Ok(());
        }
        while let Some(first) = self.segments.front() {
            if first.seq < pos.seq || (first.seq == pos.seq && pos.offset >= first.valid) {
                let is_last = self.segments.len() == 1;
                if is_last {
                    // Everything is delivered: start over with an empty directory.
                    self.writer = None;
                }
                std::fs::remove_file(segment_path(&self.dir, first.seq))?;
                self.segments.pop_front();
                self.head = Pos { seq: self.segments.front().map_or(0, |s| s.seq), offset: 0 };
                self.head_done = 0;
            } else {
                break;
            }
        }
        if let Some(first) = self.segments.front()
            && first.seq == pos.seq
        {
            // Count the records between the old head and `pos`.
            let from = if self.head.seq == pos.seq { self.head.offset } else { 0 };
            let mut file = File::open(segment_path(&self.dir, first.seq))?;
            file.seek(SeekFrom::Start(from))?;
            let mut reader = BufReader::with_capacity(8 * 1024, file);
            let mut offset = from;
            while offset < pos.offset {
                let Some(payload) = read_record(&mut reader, pos.offset - offset)? else { break };
                offset += HEADER + payload.len() as u64;
                self.head_done += 1;
            }
            self.head = Pos { seq: first.seq, offset };
        }
        if self.segments.is_empty() {
            let _ = std::fs::remove_file(self.dir.join("head"));
        } else {
            self.save_head();
        }
        Ok(())
    }

    /// Record the head for the next start. Best effort: losing it only re-sends readings the
    /// engine stores once.
    fn save_head(&self) {
        let tmp = self.dir.join("head.tmp");
        let text = format!("{} {}\n", self.head.seq, self.head.offset);
        let result =
            std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, self.dir.join("head")));
        if let Err(e) = result {
            tracing::warn!(error = %e, "cannot record the queue's replay position");
        }
    }

    /// Read `head` and place it on a record boundary of the first segment; anything unreadable
    /// means "from the start" (re-sending is harmless).
    fn load_head(&mut self) -> io::Result<()> {
        let Some(first) = self.segments.front() else {
            let _ = std::fs::remove_file(self.dir.join("head"));
            return Ok(());
        };
        let saved = std::fs::read_to_string(self.dir.join("head")).ok().and_then(|t| {
            let (seq, offset) = t.trim().split_once(' ')?;
            Some(Pos { seq: seq.parse().ok()?, offset: offset.parse().ok()? })
        });
        self.head = Pos { seq: first.seq, offset: 0 };
        self.head_done = 0;
        let Some(saved) = saved else { return Ok(()) };
        // Segments wholly before the saved head were delivered; a crash came before deletion.
        while self.segments.front().is_some_and(|s| s.seq < saved.seq) && self.segments.len() > 1 {
            if let Some(s) = self.segments.pop_front() {
                std::fs::remove_file(segment_path(&self.dir, s.seq))?;
            }
        }
        let Some(first) = self.segments.front() else { return Ok(()) };
        if first.seq != saved.seq {
            self.head = Pos { seq: first.seq, offset: 0 };
            return Ok(());
        }
        let scan = scan(&segment_path(&self.dir, first.seq), Some(saved.offset))?;
        if scan.valid == saved.offset {
            self.head = saved;
            self.head_done = scan.records;
        }
        Ok(())
    }
}

/// What a scan of one segment found.
#[derive(Debug)]
struct Scan {
    valid: u64,
    disk: u64,
    records: u64,
}

/// Walk a segment's records up to `limit` bytes (default: the whole file).
fn scan(path: &Path, limit: Option<u64>) -> io::Result<Scan> {
    let file = File::open(path)?;
    let disk = file.metadata()?.len();
    let end = limit.map_or(disk, |l| l.min(disk));
    let mut reader = BufReader::with_capacity(8 * 1024, file);
    let (mut valid, mut records) = (0, 0);
    while valid < end {
        match read_record(&mut reader, end - valid)? {
            Some(payload) => {
                valid += HEADER + payload.len() as u64;
                records += 1;
            }
            None => break,
        }
    }
    Ok(Scan { valid, disk, records })
}

/// Read one record of at most `room` bytes; `None` when it is torn or does not check.
fn read_record(reader: &mut impl Read, room: u64) -> io::Result<Option<Vec<u8>>> {
    let mut header = [0u8; HEADER as usize];
    if room < HEADER || !read_full(reader, &mut header)? {
        return Ok(None);
    }
    let len_bytes = [header[0], header[1], header[2], header[3]];
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let len = u32::from_le_bytes(len_bytes) as usize;
    if len > MAX_RECORD || HEADER + len as u64 > room {
        return Ok(None);
    }
    let mut payload = vec![0u8; len];
    if !read_full(reader, &mut payload)? || crc32(&[&len_bytes, &payload]) != crc {
        return Ok(None);
    }
    Ok(Some(payload))
}

/// `read_exact` that reports a short read as `false` instead of an error.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    match reader.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}{SEGMENT_SUFFIX}"))
}

/// CRC-32 (IEEE 802.3, as zlib) over the concatenation of `parts`.
fn crc32(parts: &[&[u8]]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for part in parts {
        for &b in *part {
            crc = TABLE[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
        }
    }
    !crc
}

/// Every report still queued in `dir`, oldest first, without taking the lock or changing
/// anything (for tests and diagnostics: a record being written may be missed).
pub fn peek(dir: &Path) -> io::Result<Vec<Vec<u8>>> {
    let mut seqs: Vec<u64> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        if let Some(seq) =
            name.to_string_lossy().strip_suffix(SEGMENT_SUFFIX).and_then(|s| s.parse().ok())
        {
            seqs.push(seq);
        }
    }
    seqs.sort_unstable();
    let head = std::fs::read_to_string(dir.join("head")).ok().and_then(|t| {
        let (seq, offset) = t.trim().split_once(' ')?;
        Some(Pos { seq: seq.parse().ok()?, offset: offset.parse().ok()? })
    });
    let mut out = Vec::new();
    for seq in seqs {
        let start = match head {
            Some(h) if h.seq > seq => continue,
            Some(h) if h.seq == seq => h.offset,
            _ => 0,
        };
        let mut file = match File::open(segment_path(dir, seq)) {
            Ok(f) => f,
            // Deleted by the agent meanwhile (delivered).
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let disk = file.metadata()?.len();
        file.seek(SeekFrom::Start(start))?;
        let mut reader = BufReader::new(file);
        let mut offset = start;
        while let Some(payload) = read_record(&mut reader, disk.saturating_sub(offset))? {
            offset += HEADER + payload.len() as u64;
            out.push(payload);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payloads(q: &Queue) -> anyhow::Result<Vec<String>> {
        let batch = q.read_batch(usize::MAX)?;
        Ok(batch.records.into_iter().map(|(_, p)| String::from_utf8_lossy(&p).into()).collect())
    }

    #[test]
    fn crc_matches_zlib() {
        assert_eq!(crc32(&[b"123456789"]), 0xCBF4_3926);
        assert_eq!(crc32(&[b"1234", b"56789"]), 0xCBF4_3926);
    }

    #[test]
    fn fifo_survives_reopen_and_acks_in_prefixes() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut q = Queue::open(dir.path(), MIN_MAX_BYTES)?;
        assert!(q.is_empty());
        for i in 0..10 {
            q.push(format!("report {i}").as_bytes())?;
        }
        assert_eq!(q.len(), 10);
        let batch = q.read_batch(3)?;
        assert_eq!(batch.records.len(), 3);
        // Not acknowledged: reading again yields the same records.
        assert_eq!(q.read_batch(3)?.records, batch.records);
        q.ack(batch.records[2].0)?;
        assert_eq!(q.len(), 7);
        drop(q);

        let mut q = Queue::open(dir.path(), MIN_MAX_BYTES)?;
        assert_eq!(q.len(), 7);
        let all = payloads(&q)?;
        assert_eq!(all.first().map(String::as_str), Some("report 3"));
        assert_eq!(all.last().map(String::as_str), Some("report 9"));
        assert_eq!(peek(dir.path())?.len(), 7);
        q.push(b"report 10")?;
        let batch = q.read_batch(100)?;
        assert_eq!(batch.records.len(), 8);
        q.ack(batch.end.ok_or_else(|| anyhow::anyhow!("empty batch"))?)?;
        assert!(q.is_empty());
        // Delivered segments are gone; the directory holds only the lock.
        let left: Vec<_> = std::fs::read_dir(dir.path())?
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        assert_eq!(left, ["lock"]);
        q.push(b"after")?;
        drop(q);
        assert_eq!(payloads(&Queue::open(dir.path(), MIN_MAX_BYTES)?)?, ["after"]);
        Ok(())
    }

    #[test]
    fn a_torn_tail_is_ignored_and_cut_off() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut q = Queue::open(dir.path(), MIN_MAX_BYTES)?;
        q.push(b"first")?;
        q.push(b"second")?;
        drop(q);
        let seg = segment_path(dir.path(), 1);
        let full = std::fs::metadata(&seg)?.len();
        // Power lost in the middle of the second record's payload.
        OpenOptions::new().write(true).open(&seg)?.set_len(full - 3)?;
        let mut q = Queue::open(dir.path(), MIN_MAX_BYTES)?;
        assert_eq!(payloads(&q)?, ["first"]);
        assert_eq!(std::fs::metadata(&seg)?.len(), HEADER + 5);
        // New records follow the good one, not the garbage.
        q.push(b"third")?;
        drop(q);
        assert_eq!(payloads(&Queue::open(dir.path(), MIN_MAX_BYTES)?)?, ["first", "third"]);

        // A flipped bit in the tail record: the CRC catches it.
        let mut bytes = std::fs::read(&seg)?;
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        std::fs::write(&seg, bytes)?;
        assert_eq!(payloads(&Queue::open(dir.path(), MIN_MAX_BYTES)?)?, ["first"]);
        Ok(())
    }

    #[test]
    fn the_cap_drops_the_oldest_segment_and_counts_it() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        // 64 KiB cap: 4 KiB segments; 1000-byte payloads, 4 records a segment.
        let mut q = Queue::open(dir.path(), MIN_MAX_BYTES)?;
        let mut dropped = 0;
        for i in 0..200u32 {
            let mut p = vec![b'x'; 1000];
            p[..4].copy_from_slice(&i.to_be_bytes());
            dropped += q.push(&p)?.dropped;
            assert!(q.disk_bytes() <= MIN_MAX_BYTES, "over the cap at {i}");
        }
        assert!(dropped > 0);
        assert_eq!(q.len() + dropped, 200);
        // The newest are kept, in order, without gaps.
        let batch = q.read_batch(usize::MAX)?;
        let ids: Vec<u32> = batch
            .records
            .iter()
            .map(|(_, p)| u32::from_be_bytes([p[0], p[1], p[2], p[3]]))
            .collect();
        assert_eq!(ids.last(), Some(&199));
        assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");
        assert_eq!(ids.len() as u64, q.len());

        // A batch read before a drop is acknowledged after it: ignored, nothing breaks.
        let old = q.read_batch(1)?.records[0].0;
        for _ in 0..40 {
            q.push(&[b'y'; 1000])?;
        }
        let before = q.len();
        q.ack(old)?;
        assert_eq!(q.len(), before);
        Ok(())
    }

    #[test]
    fn a_bad_head_file_means_from_the_start() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut q = Queue::open(dir.path(), MIN_MAX_BYTES)?;
        for p in ["a", "b", "c"] {
            q.push(p.as_bytes())?;
        }
        let first = q.read_batch(1)?.records[0].0;
        q.ack(first)?;
        drop(q);
        assert_eq!(std::fs::read_to_string(dir.path().join("head"))?, "1 9\n");
        assert_eq!(payloads(&Queue::open(dir.path(), MIN_MAX_BYTES)?)?, ["b", "c"]);
        for bad in ["", "1 4\n", "garbage", "1 999\n"] {
            std::fs::write(dir.path().join("head"), bad)?;
            assert_eq!(payloads(&Queue::open(dir.path(), MIN_MAX_BYTES)?)?, ["a", "b", "c"]);
        }
        Ok(())
    }

    #[test]
    fn one_agent_per_directory() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let _q = Queue::open(dir.path(), MIN_MAX_BYTES)?;
        let err = Queue::open(dir.path(), MIN_MAX_BYTES).err();
        assert!(err.is_some_and(|e| e.to_string().contains("another hearth-sensor-agent")));
        Ok(())
    }
}
