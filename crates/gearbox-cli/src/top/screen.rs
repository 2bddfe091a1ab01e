//! `gearbox top`'s full screen: raw mode and the alternate screen (restored on exit, on error
//! and on panic), keys read by a thread, and drawing a frame cut to the terminal's size.

use std::io::{self, Write};
use std::sync::Once;

use crossterm::cursor::{Hide, MoveTo, Show};
use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::terminal::{
    self, disable_raw_mode, enable_raw_mode, Clear, ClearType, EnterAlternateScreen,
    LeaveAlternateScreen,
};
use crossterm::{execute, queue};
use tokio::sync::mpsc;

/// The terminal in raw mode on the alternate screen, given back on drop.
pub struct Screen(());

/// Puts the terminal back as it was; harmless if it already is.
fn restore() {
    let _ = execute!(io::stdout(), Show, LeaveAlternateScreen);
    let _ = disable_raw_mode();
}

impl Screen {
    /// Enters raw mode and the alternate screen; a panic from now on restores the terminal
    /// before its message is printed.
    pub fn enter() -> io::Result<Screen> {
        static HOOK: Once = Once::new();
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore();
                previous(info);
            }));
        });
        enable_raw_mode()?;
        let screen = Screen(());
        execute!(io::stdout(), EnterAlternateScreen, Hide)?;
        Ok(screen)
    }

    /// Draws `lines` from the top left, each cut to the terminal's width, as many as fit
    /// above `status` (the last line).
    pub fn draw(&mut self, lines: &str, status: &str) -> io::Result<()> {
        // A terminal that reports no size (a pseudo-terminal nobody sized) counts as 80x24.
        let (cols, rows) = match terminal::size() {
            Ok((c, r)) if c > 0 && r > 1 => (usize::from(c), usize::from(r)),
            _ => (80, 24),
        };
        let cut = |l: &str| l.chars().take(cols).collect::<String>();
        let mut out = io::stdout().lock();
        queue!(out, MoveTo(0, 0), Clear(ClearType::All))?;
        let body: Vec<&str> = lines.lines().collect();
        let room = rows - 1;
        let shown = if body.len() > room {
            let mut v: Vec<String> = body[..room - 1].iter().map(|l| cut(l)).collect();
            v.push(format!("... {} more line(s)", body.len() - (room - 1)));
            v
        } else {
            body.iter().map(|l| cut(l)).collect()
        };
        // Raw mode: a line feed does not return the carriage.
        for (i, l) in shown.iter().enumerate() {
            queue!(out, MoveTo(0, i as u16))?;
            out.write_all(l.as_bytes())?;
        }
        queue!(out, MoveTo(0, (rows - 1) as u16))?;
        out.write_all(cut(status).as_bytes())?;
        out.flush()
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// What a key press asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A key (presses only; repeats count as presses).
    Key(KeyEvent),
    /// The terminal was resized: redraw.
    Resize,
}

/// A thread reading the terminal's events; it ends with the process.
pub fn inputs() -> mpsc::UnboundedReceiver<Input> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || loop {
        let input = match event::read() {
            Ok(Event::Key(k)) if k.kind != KeyEventKind::Release => Input::Key(k),
            Ok(Event::Resize(..)) => Input::Resize,
            Ok(_) => continue,
            Err(_) => return,
        };
        if tx.send(input).is_err() {
            return;
        }
    });
    rx
}

/// Whether `k` is Ctrl-C (raw mode delivers it as a key, not a signal).
pub fn is_interrupt(k: &KeyEvent) -> bool {
    k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c')
}
