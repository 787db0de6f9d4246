//! ISA-L's deflate encoder (igzip) for the chunks of a parallel gzip (`gzip.rs`), built in
//! with the `isal` feature: at level 1 it compresses JSON and tar headers about twice as fast
//! as zlib-rs at its level 1, and smaller. The only unsafe code here is the call into the
//! library: one stream per chunk, on buffers this function owns for the call.

use std::io;

use isal_sys::igzip_lib as isal;

/// Compresses `data` as raw deflate at igzip's level 1, primed with `dictionary` (its last
/// 32 KiB count), appending to `out`: ended by a sync flush, or by the final block if `last`.
pub(super) fn deflate(
    data: &[u8],
    dictionary: &[u8],
    last: bool,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    let fail = |what: &str, code: i32| io::Error::other(format!("igzip {what} failed ({code})"));
    let too_big = || io::Error::other("a gzip chunk over 4 GiB");
    // Level 1's working memory beside the stream (ISA-L's default size for it).
    let mut level_buf = vec![0u8; isal::ISAL_DEF_LVL1_DEFAULT as usize];
    let mut dictionary = dictionary.to_vec();
    // SAFETY: an all-zero `isal_zstream` is a valid value of the plain C struct, which
    // `isal_deflate_init` then initializes. Every pointer handed to the library points into
    // a live buffer of this function (`data`, `dictionary`, `level_buf`, the spare capacity
    // of `out`) with its length beside it, and the stream does not outlive them.
    unsafe {
        let mut s = Box::<isal::isal_zstream>::new_uninit();
        s.as_mut_ptr().write_bytes(0, 1);
        let mut s = s.assume_init();
        isal::isal_deflate_init(&mut *s);
        s.level = 1;
        s.level_buf = level_buf.as_mut_ptr();
        s.level_buf_size = u32::try_from(level_buf.len()).map_err(|_| too_big())?;
        s.gzip_flag = isal::IGZIP_DEFLATE as u16;
        if !dictionary.is_empty() {
            let len = u32::try_from(dictionary.len()).map_err(|_| too_big())?;
            let rc = isal::isal_deflate_set_dict(&mut *s, dictionary.as_mut_ptr(), len);
            if rc != isal::COMP_OK as i32 {
                return Err(fail("setting the dictionary", rc));
            }
        }
        // The library reads the input through a mutable pointer but never writes it.
        s.next_in = data.as_ptr().cast_mut();
        s.avail_in = u32::try_from(data.len()).map_err(|_| too_big())?;
        s.end_of_stream = u16::from(last);
        s.flush = if last {
            isal::NO_FLUSH
        } else {
            isal::SYNC_FLUSH
        } as u16;
        out.reserve(data.len() / 2 + 1024);
        loop {
            let len = out.len();
            let spare = (out.capacity() - len).min(u32::MAX as usize);
            s.next_out = out.as_mut_ptr().add(len);
            s.avail_out = spare as u32;
            let rc = isal::isal_deflate(&mut *s);
            if rc != isal::COMP_OK as i32 {
                return Err(fail("compressing", rc));
            }
            out.set_len(len + spare - s.avail_out as usize);
            // Done when all input is in and room was left over (the flush is written), and,
            // for the last chunk, the final block is closed.
            let ended = !last || s.internal_state.state == isal::isal_zstate_state_ZSTATE_END;
            if s.avail_in == 0 && s.avail_out > 0 && ended {
                return Ok(());
            }
            out.reserve(out.capacity().max(4096));
        }
    }
}
