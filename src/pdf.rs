//! Markdown to PDF for reports: headings, paragraphs, lists, tables, code and rules, laid out
//! on A4 pages in the PDF standard fonts (Helvetica, Courier) with real text, so the result
//! can be searched, copied and extracted. The only importer of `pdf-writer` and
//! `pulldown-cmark`.
//!
//! Text is encoded in WinAnsiEncoding; characters outside it print as `?`. Widths come from
//! the fonts' Adobe metrics, so wrapping matches what a viewer draws.

use std::collections::HashMap;
use std::sync::OnceLock;

use pdf_writer::{Content, Finish as _, Name, Pdf, Rect, Ref, Str, TextStr};
use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

const PAGE_W: f32 = 595.0;
const PAGE_H: f32 = 842.0;
const MARGIN: f32 = 50.0;
const BODY: f32 = 9.5;
const CELL_PAD: f32 = 3.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Font {
    Regular,
    Bold,
    Italic,
    Mono,
}

impl Font {
    const ALL: [Font; 4] = [Font::Regular, Font::Bold, Font::Italic, Font::Mono];

    fn resource(self) -> Name<'static> {
        Name(match self {
            Font::Regular => b"F1",
            Font::Bold => b"F2",
            Font::Italic => b"F3",
            Font::Mono => b"F4",
        })
    }

    fn base(self) -> Name<'static> {
        Name(match self {
            Font::Regular => b"Helvetica",
            Font::Bold => b"Helvetica-Bold",
            Font::Italic => b"Helvetica-Oblique",
            Font::Mono => b"Courier",
        })
    }

    fn afm(self) -> &'static str {
        use pdf_core_14_font_afms as afm;
        match self {
            Font::Regular => afm::HELVETICA,
            Font::Bold => afm::HELVETICA_BOLD,
            Font::Italic => afm::HELVETICA_OBLIQUE,
            Font::Mono => afm::COURIER,
        }
    }

    /// Advance widths of WinAnsi codes, in 1/1000 em.
    fn widths(self) -> &'static [u16; 256] {
        static TABLES: OnceLock<HashMap<Font, [u16; 256]>> = OnceLock::new();
        &TABLES.get_or_init(|| Font::ALL.iter().map(|f| (*f, parse_afm(f.afm()))).collect())[&self]
    }

    fn width(self, text: &[u8], size: f32) -> f32 {
        let w = self.widths();
        text.iter()
            .map(|&b| f32::from(w[usize::from(b)]))
            .sum::<f32>()
            * size
            / 1000.0
    }
}

/// WinAnsi codes of the glyphs whose AFM code (StandardEncoding) differs, or that only
/// WinAnsi has, by glyph name.
const WINANSI_BY_NAME: &[(&str, u8)] = &[
    ("quotesingle", b'\''),
    ("grave", b'`'),
    ("ellipsis", 0x85),
    ("quoteleft", 0x91),
    ("quoteright", 0x92),
    ("quotedblleft", 0x93),
    ("quotedblright", 0x94),
    ("bullet", 0x95),
    ("endash", 0x96),
    ("emdash", 0x97),
    ("periodcentered", 0xB7),
    ("multiply", 0xD7),
];

/// Widths by WinAnsi code from an AFM file (`C code ; WX width ; N name ; …` lines).
fn parse_afm(afm: &str) -> [u16; 256] {
    let mut out = [0u16; 256];
    let mut default = 0u16;
    for line in afm.lines().filter(|l| l.starts_with("C ")) {
        let mut code: Option<i32> = None;
        let mut width = None;
        let mut name = "";
        for field in line.split(';').map(str::trim) {
            let mut parts = field.split_whitespace();
            match (parts.next(), parts.next()) {
                (Some("C"), Some(c)) => code = c.parse().ok(),
                (Some("WX"), Some(w)) => width = w.parse().ok(),
                (Some("N"), Some(n)) => name = n,
                _ => {}
            }
        }
        let Some(width) = width else { continue };
        if name == "question" {
            default = width;
        }
        if let Some(&(_, b)) = WINANSI_BY_NAME.iter().find(|(n, _)| *n == name) {
            out[usize::from(b)] = width;
        } else if let Some(c) = code.filter(|c| (32..127).contains(c) && *c != 39 && *c != 96) {
            out[c as usize] = width;
        }
    }
    for w in out.iter_mut().filter(|w| **w == 0) {
        *w = default;
    }
    out
}

/// Text as WinAnsi bytes; characters it lacks become `?`.
fn winansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            ' '..='~' => c as u8,
            '\u{a0}'..='\u{ff}' => c as u32 as u8,
            '…' => 0x85,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '•' => 0x95,
            '–' => 0x96,
            '—' => 0x97,
            '\t' => b' ',
            _ => b'?',
        })
        .collect()
}

/// A run of text in one font.
#[derive(Debug, Clone)]
struct Run {
    font: Font,
    text: Vec<u8>,
}

#[derive(Debug, Clone)]
enum Block {
    Heading(u8, Vec<Run>),
    Paragraph(Vec<Run>),
    Item(Vec<Run>),
    Code(String),
    Table(Vec<Vec<Vec<Run>>>),
    Rule,
}

/// Parses the Markdown subset reports use into blocks.
fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut runs: Vec<Run> = Vec::new();
    let mut bold = 0;
    let mut italic = 0;
    let mut code_block: Option<String> = None;
    let mut table: Option<Vec<Vec<Vec<Run>>>> = None;
    let push = |runs: &mut Vec<Run>, font: Font, text: &str| {
        let bytes = winansi(text);
        match runs.last_mut() {
            Some(r) if r.font == font => r.text.extend(bytes),
            _ => runs.push(Run { font, text: bytes }),
        }
    };
    for event in Parser::new_ext(markdown, Options::ENABLE_TABLES) {
        let font = if bold > 0 {
            Font::Bold
        } else if italic > 0 {
            Font::Italic
        } else {
            Font::Regular
        };
        match event {
            Event::Start(Tag::Strong) => bold += 1,
            Event::End(TagEnd::Strong) => bold -= 1,
            Event::Start(Tag::Emphasis) => italic += 1,
            Event::End(TagEnd::Emphasis) => italic -= 1,
            Event::Start(Tag::CodeBlock(_)) => code_block = Some(String::new()),
            Event::End(TagEnd::CodeBlock) => {
                out.push(Block::Code(code_block.take().unwrap_or_default()));
            }
            Event::Text(t) => match &mut code_block {
                Some(c) => c.push_str(&t),
                None => push(&mut runs, font, &t),
            },
            Event::Code(t) => push(&mut runs, Font::Mono, &t),
            Event::SoftBreak | Event::HardBreak => push(&mut runs, font, " "),
            Event::End(TagEnd::Heading(level)) => {
                out.push(Block::Heading(level as u8, std::mem::take(&mut runs)));
            }
            Event::End(TagEnd::Paragraph) => {
                let r = std::mem::take(&mut runs);
                // A list item's text ends its paragraph inside the item.
                out.push(Block::Paragraph(r));
            }
            Event::End(TagEnd::Item) => {
                let r = std::mem::take(&mut runs);
                match out.last_mut() {
                    Some(Block::Paragraph(p)) if r.is_empty() => {
                        let p = std::mem::take(p);
                        out.pop();
                        out.push(Block::Item(p));
                    }
                    _ => out.push(Block::Item(r)),
                }
            }
            Event::Start(Tag::Table(_)) => table = Some(Vec::new()),
            Event::End(TagEnd::Table) => out.push(Block::Table(table.take().unwrap_or_default())),
            Event::Start(Tag::TableHead) | Event::Start(Tag::TableRow) => {
                if let Some(t) = &mut table {
                    t.push(Vec::new());
                }
            }
            Event::End(TagEnd::TableCell) => {
                if let Some(row) = table.as_mut().and_then(|t| t.last_mut()) {
                    row.push(std::mem::take(&mut runs));
                }
            }
            Event::Rule => out.push(Block::Rule),
            _ => {}
        }
    }
    out
}

/// A word (or space) in a font, measured.
struct Piece {
    font: Font,
    text: Vec<u8>,
    width: f32,
    space: bool,
}

/// Lines of pieces no wider than `width`; words longer than a line are broken.
fn wrap(runs: &[Run], size: f32, width: f32) -> Vec<Vec<Piece>> {
    let mut pieces = Vec::new();
    for r in runs {
        for chunk in r.text.split_inclusive(|b| *b == b' ') {
            let (word, space) = match chunk.strip_suffix(b" ") {
                Some(w) => (w, true),
                None => (chunk, false),
            };
            if !word.is_empty() {
                pieces.push(Piece {
                    font: r.font,
                    text: word.to_vec(),
                    width: r.font.width(word, size),
                    space: false,
                });
            }
            if space {
                pieces.push(Piece {
                    font: r.font,
                    text: b" ".to_vec(),
                    width: r.font.width(b" ", size),
                    space: true,
                });
            }
        }
    }
    let mut lines: Vec<Vec<Piece>> = vec![Vec::new()];
    let mut x = 0.0;
    for p in pieces {
        let line = lines.last_mut().expect("a line");
        if p.space {
            if !line.is_empty() {
                x += p.width;
                line.push(p);
            }
            continue;
        }
        if x + p.width <= width || line.is_empty() && p.width <= width {
            x += p.width;
            line.push(p);
            continue;
        }
        if !line.is_empty() {
            while line.last().is_some_and(|l| l.space) {
                line.pop();
            }
            lines.push(Vec::new());
            x = 0.0;
        }
        // Break a word longer than the line.
        let mut rest: &[u8] = &p.text;
        while !rest.is_empty() {
            let mut n = rest.len();
            while n > 1 && p.font.width(&rest[..n], size) > width {
                n -= 1;
            }
            let part = rest[..n].to_vec();
            let w = p.font.width(&part, size);
            rest = &rest[n..];
            let line = lines.last_mut().expect("a line");
            line.push(Piece {
                font: p.font,
                text: part,
                width: w,
                space: false,
            });
            x = w;
            if !rest.is_empty() {
                lines.push(Vec::new());
            }
        }
    }
    lines
}

/// Lays out pages; each page is a content stream.
struct Writer {
    pages: Vec<Content>,
    y: f32,
}

impl Writer {
    fn new() -> Self {
        let mut w = Writer {
            pages: Vec::new(),
            y: 0.0,
        };
        w.new_page();
        w
    }

    fn new_page(&mut self) {
        self.pages.push(Content::new());
        self.y = PAGE_H - MARGIN;
    }

    fn page(&mut self) -> &mut Content {
        self.pages.last_mut().expect("a page")
    }

    /// Makes room for `height`, starting a page when needed.
    fn room(&mut self, height: f32) {
        if self.y - height < MARGIN {
            self.new_page();
        }
    }

    fn text(&mut self, x: f32, y: f32, font: Font, size: f32, text: &[u8]) {
        let (r, g, b) = match text {
            b"PASS" if font == Font::Bold => (0.05, 0.5, 0.2),
            b"FAIL" if font == Font::Bold => (0.75, 0.1, 0.1),
            _ => (0.1, 0.1, 0.12),
        };
        let c = self.page();
        c.set_fill_rgb(r, g, b);
        c.begin_text();
        c.set_font(font.resource(), size);
        c.next_line(x, y);
        c.show(Str(text));
        c.end_text();
    }

    fn line(&mut self, x: f32, y: f32, pieces: &[Piece], size: f32) {
        let mut x = x;
        for p in pieces {
            if !p.space {
                self.text(x, y, p.font, size, &p.text);
            }
            x += p.width;
        }
    }

    fn paragraph(&mut self, runs: &[Run], size: f32, indent: f32, after: f32) {
        let leading = size * 1.35;
        for l in wrap(runs, size, PAGE_W - 2.0 * MARGIN - indent) {
            self.room(leading);
            self.y -= leading;
            self.line(MARGIN + indent, self.y, &l, size);
        }
        self.y -= after;
    }

    fn rule(&mut self, y: f32, gray: f32) {
        let c = self.page();
        c.set_stroke_rgb(gray, gray, gray);
        c.set_line_width(0.5);
        c.move_to(MARGIN, y);
        c.line_to(PAGE_W - MARGIN, y);
        c.stroke();
    }

    fn table(&mut self, rows: &[Vec<Vec<Run>>]) {
        // The header row is bold; measure it that way.
        let rows: Vec<Vec<Vec<Run>>> = rows
            .iter()
            .enumerate()
            .map(|(i, row)| {
                row.iter()
                    .map(|cell| {
                        cell.iter()
                            .map(|r| Run {
                                font: if i == 0 && r.font == Font::Regular {
                                    Font::Bold
                                } else {
                                    r.font
                                },
                                text: r.text.clone(),
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let size = BODY - 1.0;
        let leading = size * 1.3;
        let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
        if cols == 0 {
            return;
        }
        let avail = PAGE_W - 2.0 * MARGIN;
        // Each column gets at least its longest word, then a share of the rest in proportion
        // to how much more its longest cell wants.
        let measure = |c: usize, f: &dyn Fn(&[u8], Font) -> f32| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .flat_map(|cell| cell.iter().map(|r| f(&r.text, r.font)))
                .fold(12.0f32, f32::max)
                .min(avail * 0.6)
                + 2.0 * CELL_PAD
        };
        let longest_word = |t: &[u8], f: Font| {
            t.split(|b| *b == b' ')
                .map(|w| f.width(w, size))
                .fold(0.0f32, f32::max)
        };
        let natural: Vec<f32> = (0..cols)
            .map(|c| measure(c, &|t, f| f.width(t, size)))
            .collect();
        let minimum: Vec<f32> = (0..cols)
            .map(|c| measure(c, &longest_word).min(avail * 0.3))
            .collect();
        let (sum_nat, sum_min) = (natural.iter().sum::<f32>(), minimum.iter().sum::<f32>());
        let widths: Vec<f32> = if sum_nat <= avail {
            natural
        } else if sum_min >= avail {
            minimum.iter().map(|w| w * avail / sum_min).collect()
        } else {
            let share = (avail - sum_min) / (sum_nat - sum_min);
            natural
                .iter()
                .zip(&minimum)
                .map(|(n, m)| m + (n - m) * share)
                .collect()
        };
        for (i, row) in rows.iter().enumerate() {
            let wrapped: Vec<Vec<Vec<Piece>>> = (0..cols)
                .map(|c| {
                    let runs = row.get(c).map(Vec::as_slice).unwrap_or_default();
                    wrap(runs, size, widths[c] - 2.0 * CELL_PAD)
                })
                .collect();
            let lines = wrapped.iter().map(Vec::len).max().unwrap_or(1).max(1);
            let height = lines as f32 * leading + 2.0 * CELL_PAD;
            self.room(height);
            let top = self.y;
            if i == 0 {
                let c = self.page();
                c.set_fill_rgb(0.92, 0.93, 0.95);
                c.rect(MARGIN, top - height, widths.iter().sum(), height);
                c.fill_nonzero();
            }
            let mut x = MARGIN;
            for (c, cell) in wrapped.iter().enumerate() {
                for (n, l) in cell.iter().enumerate() {
                    let y = top - CELL_PAD - (n as f32 + 1.0) * leading + size * 0.25;
                    self.line(x + CELL_PAD, y, l, size);
                }
                x += widths[c];
            }
            self.y = top - height;
            self.rule(self.y, 0.8);
        }
        self.y -= 8.0;
    }

    fn block(&mut self, b: &Block) {
        match b {
            Block::Heading(level, runs) => {
                let size = match level {
                    1 => 18.0,
                    2 => 13.0,
                    _ => 11.0,
                };
                let runs: Vec<Run> = runs
                    .iter()
                    .map(|r| Run {
                        font: if r.font == Font::Mono {
                            Font::Mono
                        } else {
                            Font::Bold
                        },
                        text: r.text.clone(),
                    })
                    .collect();
                self.room(size * 3.0);
                self.y -= size * 0.6;
                self.paragraph(&runs, size, 0.0, 4.0);
                if *level == 1 {
                    let y = self.y;
                    self.rule(y, 0.6);
                    self.y -= 8.0;
                }
            }
            Block::Paragraph(runs) => self.paragraph(runs, BODY, 0.0, 6.0),
            Block::Item(runs) => {
                let leading = BODY * 1.35;
                self.room(leading);
                let y = self.y - leading;
                self.text(MARGIN + 4.0, y, Font::Regular, BODY, &[0x95]);
                self.paragraph(runs, BODY, 14.0, 2.0);
            }
            Block::Code(text) => {
                let size = BODY - 1.5;
                let leading = size * 1.3;
                for l in text.lines() {
                    let runs = [Run {
                        font: Font::Mono,
                        text: winansi(l),
                    }];
                    for w in wrap(&runs, size, PAGE_W - 2.0 * MARGIN - 8.0) {
                        self.room(leading);
                        self.y -= leading;
                        self.line(MARGIN + 8.0, self.y, &w, size);
                    }
                }
                self.y -= 6.0;
            }
            Block::Table(rows) => self.table(rows),
            Block::Rule => {
                self.room(10.0);
                self.y -= 5.0;
                let y = self.y;
                self.rule(y, 0.6);
                self.y -= 5.0;
            }
        }
    }
}

/// Renders Markdown as a PDF document titled `title`. Deterministic: the same input gives
/// the same bytes (no dates or ids are written).
pub fn from_markdown(title: &str, markdown: &str) -> Vec<u8> {
    let mut w = Writer::new();
    for b in blocks(markdown) {
        w.block(&b);
    }
    let count = w.pages.len();
    // Page numbers in the footer.
    for (i, page) in w.pages.iter_mut().enumerate() {
        let label = winansi(&format!("{title} - page {} of {count}", i + 1));
        page.set_fill_rgb(0.45, 0.45, 0.5);
        page.begin_text();
        page.set_font(Font::Regular.resource(), 7.5);
        page.next_line(MARGIN, MARGIN / 2.0);
        page.show(Str(&label));
        page.end_text();
    }

    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let info = Ref::new(3);
    let fonts: Vec<(Font, Ref)> = Font::ALL
        .iter()
        .enumerate()
        .map(|(i, f)| (*f, Ref::new(4 + i as i32)))
        .collect();
    let first_page = 4 + Font::ALL.len() as i32;
    let page_ids: Vec<Ref> = (0..count)
        .map(|i| Ref::new(first_page + 2 * i as i32))
        .collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(page_ids.iter().copied())
        .count(count as i32);
    pdf.document_info(info)
        .title(TextStr(title))
        .producer(TextStr(concat!("maestro ", env!("CARGO_PKG_VERSION"))));
    for (f, id) in &fonts {
        pdf.type1_font(*id)
            .base_font(f.base())
            .encoding_predefined(Name(b"WinAnsiEncoding"));
    }
    for (i, content) in w.pages.into_iter().enumerate() {
        let id = page_ids[i];
        let content_id = Ref::new(id.get() + 1);
        let mut page = pdf.page(id);
        page.media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H));
        page.parent(tree);
        page.contents(content_id);
        let mut resources = page.resources();
        let mut font_dict = resources.fonts();
        for (f, fid) in &fonts {
            font_dict.pair(f.resource(), *fid);
        }
        font_dict.finish();
        resources.finish();
        page.finish();
        pdf.stream(content_id, &content.finish());
    }
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_come_from_the_font_files() {
        // Helvetica: space 278, 'A' 667, quotesingle 191; Courier is monospaced (600).
        let h = Font::Regular.widths();
        assert_eq!((h[32], h[65], h[39], h[0x97]), (278, 667, 191, 1000));
        assert!(Font::Mono.widths()[33..127].iter().all(|w| *w == 600));
        assert_eq!(Font::Bold.width(b"AA", 10.0), 14.44);
    }

    #[test]
    fn long_words_and_lines_wrap_inside_the_width() {
        let runs = [Run {
            font: Font::Regular,
            text: winansi(&format!("short words then {} and more", "f".repeat(400))),
        }];
        let lines = wrap(&runs, 10.0, 200.0);
        assert!(lines.len() > 3);
        for l in &lines {
            let w: f32 = l.iter().map(|p| p.width).sum();
            assert!(w <= 200.0 + 0.01, "{w}");
        }
    }

    #[test]
    fn documents_are_deterministic_and_hold_their_text() {
        let md = "# Title — one\n\nSome **PASS** text with `code` and a table:\n\n| a | b |\n|---|---|\n| 1 | two words |\n\n- item one\n- item two\n";
        let a = from_markdown("T", md);
        assert_eq!(a, from_markdown("T", md));
        assert!(a.starts_with(b"%PDF-"));
        let text = String::from_utf8_lossy(&a);
        for needle in [
            "(Title)",
            "(PASS)",
            "(code)",
            "(two)",
            "(item)",
            "/Helvetica-Bold",
        ] {
            assert!(text.contains(needle), "{needle} missing");
        }
        assert_eq!(winansi("a—b✓"), b"a\x97b?");
    }
}
