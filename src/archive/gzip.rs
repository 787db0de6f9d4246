//! Parallel gzip for large archives, laid out as pigz lays it out: the uncompressed stream is
//! cut into fixed chunks, each compressed on a pool of threads as raw deflate primed with the
//! previous chunk's last 32 KiB and ended by a sync flush (the last one by the final block),
//! and the pieces are written in order as one gzip member, its CRC-32 combined from theirs.
//! Chunks depend only on the bytes, never on timing or the number of threads, so the output
//! is as deterministic as a serial encoder's; any gzip reader reads it. The chunks' encoder
//! is zlib-rs, or ISA-L's igzip when built in (`igzip.rs`, the `isal` feature).

use std::collections::VecDeque;
use std::io::{self, Write};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// Uncompressed bytes per chunk (small in tests, to cross many boundaries).
#[cfg(not(test))]
pub(super) const CHUNK: usize = 4 << 20;
#[cfg(test)]
pub(super) const CHUNK: usize = 256 << 10;
/// Deflate's window: how much of the previous chunk primes the next.
const WINDOW: usize = 32 << 10;

/// The deflate encoder of the chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoder {
    /// zlib-rs at a zlib level (0–9).
    Zlib(Compression),
    /// ISA-L's igzip at its level 1.
    #[cfg(feature = "isal")]
    Isal,
}

impl Encoder {
    /// The encoder for a zlib `level`: igzip's level 1 for the fast levels 1–3 when it is
    /// built in (faster than zlib-rs's level 1, and smaller), else zlib-rs at that level.
    pub fn for_level(level: u32) -> Self {
        #[cfg(feature = "isal")]
        if (1..=3).contains(&level) {
            return Encoder::Isal;
        }
        Encoder::Zlib(Compression::new(level.min(9)))
    }

    /// Every encoder this build has for a zlib `level` (for tests of each).
    #[cfg(test)]
    pub fn all_for_level(level: u32) -> Vec<Self> {
        let mut all = vec![Encoder::Zlib(Compression::new(level.min(9)))];
        if Self::for_level(level) != all[0] {
            all.push(Self::for_level(level));
        }
        all
    }

    /// The gzip header's extra flags: 4 for the fastest levels, 2 for the best.
    fn extra_flags(self) -> u8 {
        match self {
            Encoder::Zlib(c) => match c.level() {
                0..=1 => 4,
                9.. => 2,
                _ => 0,
            },
            #[cfg(feature = "isal")]
            Encoder::Isal => 4,
        }
    }
}

/// One chunk to compress, and an empty buffer for the result.
struct Job {
    data: Vec<u8>,
    dictionary: Vec<u8>,
    last: bool,
    out: Vec<u8>,
    reply: Sender<io::Result<Piece>>,
}

/// One chunk compressed, and the chunk's buffer back.
struct Piece {
    deflated: Vec<u8>,
    crc: Crc,
    data: Vec<u8>,
}

/// A gzip writer that compresses on `threads` threads (started with the first full chunk).
pub struct ParallelGz<W: Write> {
    /// Taken by `finish`.
    out: Option<W>,
    encoder: Encoder,
    threads: usize,
    chunk: Vec<u8>,
    dictionary: Vec<u8>,
    jobs: Option<Sender<Job>>,
    pool: Vec<JoinHandle<()>>,
    pending: VecDeque<Receiver<io::Result<Piece>>>,
    /// Buffers of written pieces, kept for the next chunks: fresh megabytes would be
    /// fresh pages for the kernel to zero, every time.
    spare: Vec<(Vec<u8>, Vec<u8>)>,
    crc: Crc,
    header_written: bool,
}

impl<W: Write> ParallelGz<W> {
    /// A writer compressing with `encoder` on `threads` threads (at least one).
    pub fn new(out: W, encoder: Encoder, threads: usize) -> Self {
        ParallelGz {
            out: Some(out),
            encoder,
            threads: threads.max(1),
            chunk: Vec::with_capacity(CHUNK),
            dictionary: Vec::new(),
            jobs: None,
            pool: Vec::new(),
            pending: VecDeque::new(),
            spare: Vec::new(),
            crc: Crc::new(),
            header_written: false,
        }
    }

    /// The gzip header: no file name, no time, "unknown" operating system, and the extra
    /// flag a serial encoder sets for the level.
    fn header(&self) -> [u8; 10] {
        let xfl = self.encoder.extra_flags();
        [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]
    }

    fn start_pool(&mut self) -> Sender<Job> {
        if let Some(jobs) = &self.jobs {
            return jobs.clone();
        }
        let (tx, rx) = crossbeam_channel::bounded::<Job>(self.threads * 2);
        for _ in 0..self.threads {
            let (rx, encoder) = (rx.clone(), self.encoder);
            self.pool.push(std::thread::spawn(move || {
                for job in rx {
                    let reply = job.reply.clone();
                    // The writer may be gone (an error elsewhere); nothing to do then.
                    let _ = reply.send(compress(encoder, job));
                }
            }));
        }
        self.jobs = Some(tx.clone());
        tx
    }

    /// Hands the current chunk to the pool, writing finished pieces so that no more than
    /// twice the threads are in flight.
    fn dispatch(&mut self, last: bool) -> io::Result<()> {
        // Both buffers are made on this thread, which frees them: a pool thread that
        // allocated them may have ended by then, and memory freed into the heap of an ended
        // thread stays with the process.
        let (next, mut out) = self
            .spare
            .pop()
            .unwrap_or_else(|| (Vec::with_capacity(CHUNK), Vec::new()));
        out.reserve(self.chunk.len() / 2 + 64);
        let data = std::mem::replace(&mut self.chunk, next);
        let tail = data.len().saturating_sub(WINDOW);
        let dictionary = std::mem::replace(&mut self.dictionary, data[tail..].to_vec());
        let (reply, result) = crossbeam_channel::bounded(1);
        let job = Job {
            data,
            dictionary,
            last,
            out,
            reply,
        };
        if last && self.jobs.is_none() {
            // Small enough for one chunk: no threads.
            let piece = compress(self.encoder, job);
            self.write_piece(piece)?;
            return Ok(());
        }
        while self.pending.len() >= self.threads * 2 {
            self.write_next()?;
        }
        self.start_pool()
            .send(job)
            .map_err(|_| io::Error::other("gzip threads stopped"))?;
        self.pending.push_back(result);
        Ok(())
    }

    fn write_next(&mut self) -> io::Result<()> {
        let Some(result) = self.pending.pop_front() else {
            return Ok(());
        };
        let piece = result
            .recv()
            .map_err(|_| io::Error::other("a gzip thread stopped"))?;
        self.write_piece(piece)
    }

    fn out(&mut self) -> io::Result<&mut W> {
        self.out
            .as_mut()
            .ok_or_else(|| io::Error::other("gzip stream already finished"))
    }

    fn write_piece(&mut self, piece: io::Result<Piece>) -> io::Result<()> {
        let piece = piece?;
        if !self.header_written {
            let header = self.header();
            self.out()?.write_all(&header)?;
            self.header_written = true;
        }
        self.out()?.write_all(&piece.deflated)?;
        self.crc.combine(&piece.crc);
        let Piece {
            mut deflated,
            mut data,
            ..
        } = piece;
        deflated.clear();
        data.clear();
        self.spare.push((data, deflated));
        Ok(())
    }

    /// Compresses what is left, writes the trailer and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.dispatch(true)?;
        while !self.pending.is_empty() {
            self.write_next()?;
        }
        let (crc, len) = (self.crc.sum(), self.crc.amount());
        let out = self.out()?;
        out.write_all(&crc.to_le_bytes())?;
        out.write_all(&len.to_le_bytes())?;
        self.stop();
        self.out
            .take()
            .ok_or_else(|| io::Error::other("gzip stream already finished"))
    }

    fn stop(&mut self) {
        self.jobs = None;
        self.pending.clear();
        for t in self.pool.drain(..) {
            let _ = t.join();
        }
    }
}

impl<W: Write> Write for ParallelGz<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(CHUNK - self.chunk.len());
        self.chunk.extend_from_slice(&buf[..n]);
        if self.chunk.len() == CHUNK {
            self.dispatch(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Flushing would cut a chunk where the writes fall; only `finish` ends the stream.
        Ok(())
    }
}

impl<W: Write> Drop for ParallelGz<W> {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Compresses one chunk as raw deflate, ended by a sync flush or, for the last, the final
/// block.
fn compress(encoder: Encoder, job: Job) -> io::Result<Piece> {
    let mut deflated = job.out;
    match encoder {
        Encoder::Zlib(level) => {
            deflate_zlib(level, &job.data, &job.dictionary, job.last, &mut deflated)?;
        }
        #[cfg(feature = "isal")]
        Encoder::Isal => {
            super::igzip::deflate(&job.data, &job.dictionary, job.last, &mut deflated)?;
        }
    }
    let mut crc = Crc::new();
    crc.update(&job.data);
    Ok(Piece {
        deflated,
        crc,
        data: job.data,
    })
}

/// [`compress`] with zlib-rs. A new compressor each time: a reset one may keep state that
/// would make the output depend on which thread compressed what before.
fn deflate_zlib(
    level: Compression,
    data: &[u8],
    dictionary: &[u8],
    last: bool,
    deflated: &mut Vec<u8>,
) -> io::Result<()> {
    let z = &mut Compress::new(level, false);
    if !dictionary.is_empty() {
        z.set_dictionary(dictionary).map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let start = z.total_in();
    loop {
        if deflated.len() == deflated.capacity() {
            deflated.reserve(deflated.capacity().max(4096));
        }
        let consumed = (z.total_in() - start) as usize;
        let status = z
            .compress_vec(&data[consumed..], deflated, flush)
            .map_err(io::Error::other)?;
        // A flush is complete when all input is in and the output was not filled.
        let flushed =
            (z.total_in() - start) as usize == data.len() && deflated.len() < deflated.capacity();
        match status {
            Status::StreamEnd => return Ok(()),
            _ if flushed && !last => return Ok(()),
            _ => {}
        }
    }
}
