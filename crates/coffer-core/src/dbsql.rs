//! SQL for database users: statement templates for dynamic credentials and
//! rotated secrets (MySQL/MariaDB and PostgreSQL), generated user names and
//! passwords, and user TTLs. Pure: `coffer-server`'s `dbconn` runs the SQL.
//!
//! Threat model. Templates are written by an administrator and may contain
//! any SQL; what must never happen is that a *value* (a user name, a
//! password, an expiry) changes the shape of a statement. So a template is
//! lexed once, when it is created, into text and placeholders, each
//! placeholder tagged with its lexical context (inside `'…'`, `"…"`, `` `…` ``
//! or bare); rendering escapes the value for exactly that context and never
//! re-scans the result. What the lexer cannot place with certainty is
//! refused: placeholders in comments or dollar-quoted bodies, unterminated
//! quotes, MySQL executable comments (`/*! … */`), a backslash right before a
//! placeholder in a backslash-escaping string, Postgres `U&` strings.
//!
//! The lexer assumes what `dbconn` enforces on every session: MySQL without
//! `NO_BACKSLASH_ESCAPES` and `ANSI_QUOTES`, PostgreSQL with
//! `standard_conforming_strings = on`. Values are escaped so that even under
//! the other modes they cannot leave their quotes (quotes are doubled, never
//! backslash-escaped), only read differently.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::CoreError;

/// Largest accepted template, in bytes.
pub const MAX_TEMPLATE_LEN: usize = 16 * 1024;
/// Most statements in one template.
pub const MAX_STATEMENTS: usize = 50;

/// The database family a template is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DbKind {
    /// MySQL and MariaDB.
    MySql,
    /// PostgreSQL.
    Postgres,
}

impl DbKind {
    /// `"mysql"` or `"postgres"`.
    pub fn as_str(self) -> &'static str {
        match self {
            DbKind::MySql => "mysql",
            DbKind::Postgres => "postgres",
        }
    }

    /// Longest user name accepted by [`check_username`]: 32 for MySQL
    /// (MySQL 8's limit; MariaDB allows 80), 63 for PostgreSQL (NAMEDATALEN - 1).
    pub fn max_username_len(self) -> usize {
        match self {
            DbKind::MySql => 32,
            DbKind::Postgres => 63,
        }
    }
}

impl fmt::Display for DbKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DbKind {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Self, CoreError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "mysql" | "mariadb" => Ok(DbKind::MySql),
            "postgres" | "postgresql" => Ok(DbKind::Postgres),
            _ => Err(CoreError::Invalid(format!(
                "unknown database type {:?}: use mysql, mariadb, postgres or postgresql",
                truncate(s, 40)
            ))),
        }
    }
}

/// The values a template is rendered with.
#[derive(Clone, Copy)]
pub struct Vars<'a> {
    /// The user (role) name: `{{name}}` (also `{{username}}`).
    pub name: &'a str,
    /// The password: `{{password}}`.
    pub password: &'a str,
    /// The expiry, e.g. `2026-11-22 10:00:00+00`: `{{expiration}}`.
    pub expiration: &'a str,
}

impl fmt::Debug for Vars<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vars")
            .field("name", &self.name)
            .field("password", &"[REDACTED]")
            .field("expiration", &self.expiration)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    Name,
    Password,
    Expiration,
}

/// Where a placeholder sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    /// Outside any quotes: rendered as a complete literal or identifier.
    Bare,
    /// Inside quotes `quote`; `backslash` when `\` escapes there.
    Quoted { quote: u8, backslash: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Text(String),
    Var(Var, Ctx),
}

/// A validated statement template: one or more statements, each split into
/// text and context-tagged placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statements {
    kind: DbKind,
    stmts: Vec<String>,
    parts: Vec<Vec<Seg>>,
}

/// Lexer state.
enum State {
    Normal,
    Quoted {
        quote: u8,
        backslash: bool,
        /// PostgreSQL `U&'…'` / `U&"…"`.
        unicode: bool,
        start: usize,
    },
    LineComment,
    BlockComment {
        depth: usize,
        start: usize,
    },
    Dollar {
        tag: String,
        start: usize,
    },
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

fn invalid(msg: impl Into<String>) -> CoreError {
    CoreError::Invalid(msg.into())
}

/// At most `n` characters of `s`, for messages.
fn truncate(s: &str, n: usize) -> String {
    let mut out: String = s.chars().take(n).collect();
    if s.chars().count() > n {
        out.push('…');
    }
    out
}

/// The line (1-based) of byte offset `at`, for messages.
fn line_of(template: &str, at: usize) -> usize {
    template.as_bytes()[..at.min(template.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Parse `{{ … }}` starting at `at` (which holds `{{`): the variable and the
/// offset just after `}}`.
fn placeholder(template: &str, at: usize) -> Result<(Var, usize), CoreError> {
    let rest = &template[at + 2..];
    let Some(close) = rest.find("}}") else {
        return Err(invalid(format!(
            "unterminated placeholder at line {}: a `{{{{` without `}}}}`",
            line_of(template, at)
        )));
    };
    let inner = &rest[..close];
    let var = match inner.trim() {
        "name" | "username" => Var::Name,
        "password" => Var::Password,
        "expiration" => Var::Expiration,
        other => {
            return Err(invalid(format!(
                "unknown placeholder {{{{{}}}}} at line {}: use {{{{name}}}}, {{{{password}}}} or {{{{expiration}}}}",
                truncate(other, 40),
                line_of(template, at)
            )));
        }
    };
    Ok((var, at + 2 + close + 2))
}

impl Statements {
    /// Parse a template of one or more statements separated by `;` outside
    /// quotes and comments. Placeholders: `{{name}}` (or `{{username}}`),
    /// `{{password}}`, `{{expiration}}`, spaces inside the braces allowed.
    pub fn parse(kind: DbKind, template: &str) -> Result<Statements, CoreError> {
        if template.len() > MAX_TEMPLATE_LEN {
            return Err(invalid(format!(
                "the statements are {} bytes long: at most {} bytes are allowed",
                template.len(),
                MAX_TEMPLATE_LEN
            )));
        }
        if template.contains('\0') {
            return Err(invalid("the statements contain a NUL character"));
        }
        let b = template.as_bytes();
        let mut out = Statements {
            kind,
            stmts: Vec::new(),
            parts: Vec::new(),
        };
        let mut segs: Vec<Seg> = Vec::new();
        let mut run = 0usize; // start of the current text run
        let mut stmt_start = 0usize;
        let mut has_code = false;
        let mut state = State::Normal;
        let mut i = 0usize;

        // Push text run [run, end) and a placeholder.
        macro_rules! push_var {
            ($var:expr, $ctx:expr, $end:expr) => {{
                if run < i {
                    segs.push(Seg::Text(template[run..i].to_owned()));
                }
                segs.push(Seg::Var($var, $ctx));
                i = $end;
                run = i;
            }};
        }

        while i < b.len() {
            let c = b[i];
            let next = b.get(i + 1).copied();
            match &mut state {
                State::Normal => {
                    if c == b'{' && next == Some(b'{') {
                        let (var, end) = placeholder(template, i)?;
                        has_code = true;
                        push_var!(var, Ctx::Bare, end);
                        continue;
                    }
                    match c {
                        b';' => {
                            if run < i {
                                segs.push(Seg::Text(template[run..i].to_owned()));
                            }
                            out.finish(template, stmt_start, i, has_code, &mut segs)?;
                            i += 1;
                            run = i;
                            stmt_start = i;
                            has_code = false;
                            continue;
                        }
                        b'\'' | b'"' => {
                            has_code = true;
                            let backslash = match kind {
                                DbKind::MySql => true,
                                DbKind::Postgres => {
                                    let prev = |k: usize| i.checked_sub(k).map(|p| b[p]);
                                    let word_start =
                                        |k: usize| prev(k).is_none_or(|p| !is_ident_byte(p));
                                    if prev(1) == Some(b'&')
                                        && matches!(prev(2), Some(b'u' | b'U'))
                                        && word_start(3)
                                    {
                                        // Unicode-escape strings (`U&'…'`, maybe with
                                        // UESCAPE): no placeholders there, see Quoted.
                                        state = State::Quoted {
                                            quote: c,
                                            backslash: true,
                                            unicode: true,
                                            start: i,
                                        };
                                        i += 1;
                                        continue;
                                    }
                                    c == b'\''
                                        && matches!(prev(1), Some(b'e' | b'E'))
                                        && word_start(2)
                                }
                            };
                            state = State::Quoted {
                                quote: c,
                                backslash,
                                unicode: false,
                                start: i,
                            };
                        }
                        b'`' if kind == DbKind::MySql => {
                            has_code = true;
                            state = State::Quoted {
                                quote: c,
                                backslash: false,
                                unicode: false,
                                start: i,
                            };
                        }
                        b'#' if kind == DbKind::MySql => state = State::LineComment,
                        b'-' if next == Some(b'-') => {
                            let third = b.get(i + 2).copied();
                            if kind == DbKind::Postgres
                                || third
                                    .is_none_or(|t| t.is_ascii_whitespace() || t.is_ascii_control())
                            {
                                state = State::LineComment;
                                i += 2;
                                continue;
                            }
                            has_code = true;
                        }
                        b'/' if next == Some(b'*') => {
                            if kind == DbKind::MySql {
                                let rest = &b[i + 2..];
                                if rest.starts_with(b"!") || rest.starts_with(b"M!") {
                                    return Err(invalid(format!(
                                        "executable comments (/*! … */) are not supported (line {}): write the SQL without the comment",
                                        line_of(template, i)
                                    )));
                                }
                            }
                            state = State::BlockComment { depth: 1, start: i };
                            i += 2;
                            continue;
                        }
                        b'$' if kind == DbKind::Postgres
                            && i.checked_sub(1).is_none_or(|p| !is_ident_byte(b[p])) =>
                        {
                            has_code = true;
                            // $tag$ with tag empty or [A-Za-z_][A-Za-z0-9_]*
                            let mut j = i + 1;
                            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                                j += 1;
                            }
                            let tag_ok = j < b.len()
                                && b[j] == b'$'
                                && (j == i + 1 || !b[i + 1].is_ascii_digit());
                            if tag_ok {
                                state = State::Dollar {
                                    tag: template[i..=j].to_owned(),
                                    start: i,
                                };
                                i = j + 1;
                                continue;
                            }
                        }
                        c if c.is_ascii_whitespace() => {}
                        _ => has_code = true,
                    }
                    i += 1;
                }
                State::Quoted {
                    quote,
                    backslash,
                    unicode,
                    ..
                } => {
                    let (q, bs, unicode) = (*quote, *backslash, *unicode);
                    if c == b'{' && next == Some(b'{') {
                        if unicode {
                            return Err(invalid(format!(
                                "placeholders cannot be used inside a U&-escaped string or identifier (line {})",
                                line_of(template, i)
                            )));
                        }
                        let (var, end) = placeholder(template, i)?;
                        push_var!(
                            var,
                            Ctx::Quoted {
                                quote: q,
                                backslash: bs
                            },
                            end
                        );
                        continue;
                    }
                    if bs && c == b'\\' {
                        if next == Some(b'{') {
                            return Err(invalid(format!(
                                "a backslash right before `{{` in a string (line {}) could escape the value put there: remove it",
                                line_of(template, i)
                            )));
                        }
                        i += 2;
                        continue;
                    }
                    if c == q {
                        if next == Some(q) {
                            i += 2;
                            continue;
                        }
                        state = State::Normal;
                    }
                    i += 1;
                }
                State::LineComment => {
                    if c == b'{' && next == Some(b'{') {
                        return Err(in_comment(template, i));
                    }
                    if c == b'\n' {
                        state = State::Normal;
                    }
                    i += 1;
                }
                State::BlockComment { depth, .. } => {
                    if c == b'{' && next == Some(b'{') {
                        return Err(in_comment(template, i));
                    }
                    if c == b'*' && next == Some(b'/') {
                        *depth -= 1;
                        if *depth == 0 {
                            state = State::Normal;
                        }
                        i += 2;
                        continue;
                    }
                    // PostgreSQL block comments nest; MySQL's do not.
                    if kind == DbKind::Postgres && c == b'/' && next == Some(b'*') {
                        *depth += 1;
                        i += 2;
                        continue;
                    }
                    i += 1;
                }
                State::Dollar { tag, .. } => {
                    if c == b'{' && next == Some(b'{') {
                        return Err(invalid(format!(
                            "placeholders cannot be used inside a dollar-quoted body ({tag} … {tag}, line {}): its content cannot be escaped",
                            line_of(template, i)
                        )));
                    }
                    if b[i..].starts_with(tag.as_bytes()) {
                        i += tag.len();
                        state = State::Normal;
                        continue;
                    }
                    i += 1;
                }
            }
        }
        match state {
            State::Normal | State::LineComment => {}
            State::Quoted { quote, start, .. } => {
                return Err(invalid(format!(
                    "unterminated quote {} opened at line {}",
                    quote as char,
                    line_of(template, start)
                )));
            }
            State::BlockComment { start, .. } => {
                return Err(invalid(format!(
                    "unterminated comment /* opened at line {}",
                    line_of(template, start)
                )));
            }
            State::Dollar { tag, start } => {
                return Err(invalid(format!(
                    "unterminated dollar quote {tag} opened at line {}",
                    line_of(template, start)
                )));
            }
        }
        if run < b.len() {
            segs.push(Seg::Text(template[run..].to_owned()));
        }
        out.finish(template, stmt_start, b.len(), has_code, &mut segs)?;
        if out.stmts.is_empty() {
            return Err(invalid("no statements: the template is empty"));
        }
        Ok(out)
    }

    /// Close the statement in `template[start..end]` made of `segs`.
    fn finish(
        &mut self,
        template: &str,
        start: usize,
        end: usize,
        has_code: bool,
        segs: &mut Vec<Seg>,
    ) -> Result<(), CoreError> {
        let parts = std::mem::take(segs);
        if !has_code {
            return Ok(()); // only blanks and comments
        }
        if self.stmts.len() == MAX_STATEMENTS {
            return Err(invalid(format!(
                "more than {MAX_STATEMENTS} statements: split the work or simplify the template"
            )));
        }
        self.stmts.push(template[start..end].trim().to_owned());
        self.parts.push(trim_parts(parts));
        Ok(())
    }

    /// The statements a new temporary user is created with when the
    /// dynamic secret sets none.
    pub fn default_creation(kind: DbKind) -> Statements {
        Self::builtin(
            kind,
            match kind {
                DbKind::MySql => {
                    "CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}'; GRANT SELECT ON *.* TO '{{name}}'@'%'"
                }
                DbKind::Postgres => {
                    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO \"{{name}}\""
                }
            },
        )
    }

    /// The statements a temporary user is revoked with when the dynamic
    /// secret sets none. (`dbconn` drops a MySQL user at every host it
    /// exists at, and skips these for a PostgreSQL role that is gone.)
    pub fn default_revocation(kind: DbKind) -> Statements {
        Self::builtin(
            kind,
            match kind {
                DbKind::MySql => "DROP USER IF EXISTS '{{name}}'@'%'",
                DbKind::Postgres => "DROP OWNED BY \"{{name}}\"; DROP ROLE IF EXISTS \"{{name}}\"",
            },
        )
    }

    fn builtin(kind: DbKind, template: &str) -> Statements {
        match Statements::parse(kind, template) {
            Ok(s) => s,
            // The built-in templates are constants covered by unit tests.
            Err(e) => unreachable!("built-in {kind} template does not parse: {e}"),
        }
    }

    /// The database family this template is for.
    pub fn kind(&self) -> DbKind {
        self.kind
    }

    /// The template text of each statement (placeholders unrendered: no secrets).
    pub fn stmts(&self) -> &[String] {
        &self.stmts
    }

    /// The template text of statement `i` (no secrets), for messages such as
    /// `statement 2 (GRANT SELECT ON …) failed: …`.
    pub fn statement(&self, i: usize) -> Option<&str> {
        self.stmts.get(i).map(String::as_str)
    }

    /// How many statements.
    pub fn len(&self) -> usize {
        self.stmts.len()
    }

    /// Never true for a parsed template (an empty one is refused).
    pub fn is_empty(&self) -> bool {
        self.stmts.is_empty()
    }

    /// Whether some statement uses `{{name}}`.
    pub fn uses_name(&self) -> bool {
        self.uses(Var::Name)
    }

    /// Whether some statement uses `{{password}}`.
    pub fn uses_password(&self) -> bool {
        self.uses(Var::Password)
    }

    fn uses(&self, v: Var) -> bool {
        self.parts
            .iter()
            .flatten()
            .any(|s| matches!(s, Seg::Var(x, _) if *x == v))
    }

    /// Substitute the values, each escaped for its lexical context: inside
    /// quotes the quote character is doubled (and `\` doubled where it
    /// escapes); bare, a password or expiry becomes a string literal and a
    /// name a quoted identifier (PostgreSQL) or string literal (MySQL). NUL
    /// characters, which no database keeps in names or passwords, are dropped.
    /// One rendered statement per template statement; they contain the
    /// password, so they are wiped on drop.
    pub fn render(&self, vars: &Vars<'_>) -> Vec<Zeroizing<String>> {
        self.parts
            .iter()
            .map(|segs| {
                let mut cap = 0;
                for s in segs {
                    cap += match s {
                        Seg::Text(t) => t.len(),
                        Seg::Var(v, _) => 2 * value(vars, *v).len() + 4,
                    };
                }
                // Sized up front so the buffer never reallocates (which would
                // leave an unwiped copy of the password behind).
                let mut out = Zeroizing::new(String::with_capacity(cap));
                for s in segs {
                    match s {
                        Seg::Text(t) => out.push_str(t),
                        Seg::Var(v, ctx) => {
                            let val = value(vars, *v);
                            match *ctx {
                                Ctx::Quoted { quote, backslash } => {
                                    escape_into(&mut out, val, quote, backslash)
                                }
                                Ctx::Bare => {
                                    let ident = *v == Var::Name && self.kind == DbKind::Postgres;
                                    let (q, bs) = if ident {
                                        (b'"', false)
                                    } else {
                                        (b'\'', self.kind == DbKind::MySql)
                                    };
                                    out.push(q as char);
                                    escape_into(&mut out, val, q, bs);
                                    out.push(q as char);
                                }
                            }
                        }
                    }
                }
                out
            })
            .collect()
    }
}

fn in_comment(template: &str, at: usize) -> CoreError {
    invalid(format!(
        "placeholder in a comment (line {}): a value there would not be used, move it out of the comment",
        line_of(template, at)
    ))
}

/// Trim leading/trailing whitespace of a statement's segments.
fn trim_parts(mut parts: Vec<Seg>) -> Vec<Seg> {
    if let Some(Seg::Text(t)) = parts.first_mut() {
        *t = t.trim_start().to_owned();
    }
    if let Some(Seg::Text(t)) = parts.last_mut() {
        *t = t.trim_end().to_owned();
    }
    parts.retain(|s| !matches!(s, Seg::Text(t) if t.is_empty()));
    parts
}

fn value<'a>(vars: &Vars<'a>, v: Var) -> &'a str {
    match v {
        Var::Name => vars.name,
        Var::Password => vars.password,
        Var::Expiration => vars.expiration,
    }
}

/// Append `val` escaped for the inside of quotes `quote`.
fn escape_into(out: &mut String, val: &str, quote: u8, backslash: bool) {
    for ch in val.chars() {
        match ch {
            '\0' => {}
            c if c as u32 == u32::from(quote) => {
                out.push(c);
                out.push(c);
            }
            '\\' if backslash => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
}

/// `value` as a complete string literal: `'…'` with `'` doubled (and `\`
/// doubled for MySQL). NUL characters are dropped.
pub fn quote_literal(kind: DbKind, value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    escape_into(&mut out, value, b'\'', kind == DbKind::MySql);
    out.push('\'');
    out
}

/// `value` as a quoted identifier: `"…"` (PostgreSQL) or `` `…` `` (MySQL),
/// the quote character doubled. NUL characters are dropped.
pub fn quote_ident(kind: DbKind, value: &str) -> String {
    let q = match kind {
        DbKind::MySql => b'`',
        DbKind::Postgres => b'"',
    };
    let mut out = String::with_capacity(value.len() + 2);
    out.push(q as char);
    escape_into(&mut out, value, q, false);
    out.push(q as char);
    out
}

// ------------------------------------------------------------ user names

fn username_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// A user name is `[A-Za-z][A-Za-z0-9_.-]*`, at most 32 characters for MySQL
/// and 63 for PostgreSQL.
pub fn check_username(kind: DbKind, name: &str) -> Result<(), CoreError> {
    let reason = if name.is_empty() {
        "a user name is required"
    } else if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        "a user name must start with a letter"
    } else if !name.chars().all(username_char) {
        "a user name may only contain letters, digits, _ . and -"
    } else if name.len() > kind.max_username_len() {
        match kind {
            DbKind::MySql => "longer than 32 characters, the MySQL limit",
            DbKind::Postgres => "longer than 63 characters, the PostgreSQL limit",
        }
    } else {
        return Ok(());
    };
    Err(CoreError::InvalidName {
        name: truncate(name, 80),
        reason,
    })
}

/// The last path segment of an item name, reduced to `[a-z0-9_]`:
/// letters lowercased, `-`, `.` and spaces turned into `_`, anything else
/// dropped, runs of `_` collapsed; `item` when nothing is left.
fn sanitize_item(item_name: &str) -> String {
    let seg = item_name
        .rsplit('/')
        .find(|s| !s.trim().is_empty())
        .unwrap_or("");
    let mut out = String::new();
    for c in seg.chars() {
        let m = if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else if matches!(c, '-' | '.' | ' ' | '_') {
            '_'
        } else {
            continue;
        };
        if m == '_' && (out.is_empty() || out.ends_with('_')) {
            continue;
        }
        out.push(m);
    }
    while out.ends_with('_') {
        out.pop();
    }
    if out.is_empty() {
        out.push_str("item");
    }
    out
}

#[derive(Debug, PartialEq, Eq)]
enum NamePart {
    Lit(String),
    Random,
    Item,
    Time,
}

const DEFAULT_ITEM_LEN: usize = 8;

/// A temporary user's name. Default: `tmp_<item>_<random>` where `<item>` is
/// the sanitised last segment of `item_name` (at most 8 characters). A
/// custom template (Akeyless's `custom-username-template`) may use
/// `{{random}}` (required), `{{item}}` and `{{time}}` (unix seconds) between
/// literal `[A-Za-z0-9_.-]` text. When the result would be too long the item
/// part is shortened, never the random part. `random` must be letters and digits.
pub fn username_from_template(
    kind: DbKind,
    template: Option<&str>,
    item_name: &str,
    random: &str,
    unix_time: i64,
) -> Result<String, CoreError> {
    if random.is_empty() || !random.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(invalid(
            "the random part of a user name must be letters and digits",
        ));
    }
    let (parts, item_cap) = match template {
        None => (
            vec![
                NamePart::Lit("tmp_".into()),
                NamePart::Item,
                NamePart::Lit("_".into()),
                NamePart::Random,
            ],
            DEFAULT_ITEM_LEN,
        ),
        Some(t) => (parse_name_template(t)?, usize::MAX),
    };
    let time = unix_time.to_string();
    let max = kind.max_username_len();
    let fixed: usize = parts
        .iter()
        .map(|p| match p {
            NamePart::Lit(s) => s.len(),
            NamePart::Random => random.len(),
            NamePart::Time => time.len(),
            NamePart::Item => 0,
        })
        .sum();
    if fixed > max {
        return Err(invalid(format!(
            "the user name template makes names of at least {fixed} characters: {kind} allows {max}"
        )));
    }
    let items = parts.iter().filter(|p| **p == NamePart::Item).count();
    let mut item = sanitize_item(item_name);
    if let Some(per_item) = (max - fixed).checked_div(items) {
        item.truncate(per_item.min(item_cap)); // ASCII only: any offset is a char boundary
        while item.ends_with('_') {
            item.pop();
        }
    }
    let mut name = String::with_capacity(max);
    for p in &parts {
        match p {
            NamePart::Lit(s) => name.push_str(s),
            NamePart::Random => name.push_str(random),
            NamePart::Time => name.push_str(&time),
            NamePart::Item => name.push_str(&item),
        }
    }
    check_username(kind, &name).map_err(|e| match e {
        CoreError::InvalidName { reason, .. } => invalid(format!(
            "the user name template makes {:?}, which is not a valid {kind} user name: {reason}{}",
            name,
            if reason.contains("start with a letter") {
                " (begin the template with literal text such as tmp_)"
            } else {
                ""
            }
        )),
        other => other,
    })?;
    Ok(name)
}

fn parse_name_template(t: &str) -> Result<Vec<NamePart>, CoreError> {
    if t.len() > 200 {
        return Err(invalid("the user name template is longer than 200 bytes"));
    }
    let mut parts = Vec::new();
    let mut rest = t;
    while !rest.is_empty() {
        match rest.find("{{") {
            Some(0) => {
                let Some(close) = rest.find("}}") else {
                    return Err(invalid(
                        "unterminated placeholder in the user name template: a `{{` without `}}`",
                    ));
                };
                let inner = rest[2..close].trim();
                parts.push(match inner {
                    "random" => NamePart::Random,
                    "item" => NamePart::Item,
                    "time" => NamePart::Time,
                    other => {
                        return Err(invalid(format!(
                            "unknown placeholder {{{{{}}}}} in the user name template: use {{{{random}}}}, {{{{item}}}} or {{{{time}}}}",
                            truncate(other, 40)
                        )));
                    }
                });
                rest = &rest[close + 2..];
            }
            found => {
                let end = found.unwrap_or(rest.len());
                let lit = &rest[..end];
                if !lit.chars().all(username_char) {
                    return Err(invalid(format!(
                        "the user name template may only contain letters, digits, _ . - and placeholders, not {:?}",
                        truncate(lit, 40)
                    )));
                }
                parts.push(NamePart::Lit(lit.to_owned()));
                rest = &rest[end..];
            }
        }
    }
    if !parts.contains(&NamePart::Random) {
        return Err(invalid(
            "the user name template must contain {{random}} so that every user name is unique",
        ));
    }
    Ok(parts)
}

// ------------------------------------------------------------ passwords

/// Special characters a generated password may contain: safe in URLs,
/// shells, connection strings and both databases' string literals.
pub const PASSWORD_SPECIALS: &str = "-_.~";
/// Every character a generated password may contain.
pub const PASSWORD_ALPHABET: &str =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~";
const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
const DIGITS: &[u8] = b"0123456789";
/// Longest password [`password_from_bytes`] makes.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Character classes a generated password must contain at least one of.
/// Specials are only used at all when `special` is set (some clients choke
/// on them); letters and digits are always in the alphabet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PasswordRules {
    pub upper: bool,
    pub lower: bool,
    pub digit: bool,
    pub special: bool,
}

impl Default for PasswordRules {
    fn default() -> Self {
        PasswordRules {
            upper: true,
            lower: true,
            digit: true,
            special: false,
        }
    }
}

/// How many random bytes to give [`password_from_bytes`] for a password of
/// `len` characters: enough that rejection sampling practically never runs out.
pub const fn password_random_len(len: usize) -> usize {
    4 * len + 64
}

/// Unbiased indices drawn from caller-supplied random bytes (rejection
/// sampling). Should the bytes run out, it goes on with a SplitMix64 stream
/// seeded from all of them, so the result stays a function of the input.
struct Draw<'a> {
    bytes: &'a [u8],
    pos: usize,
    state: u64,
}

impl Draw<'_> {
    fn new(bytes: &[u8]) -> Draw<'_> {
        let mut state = 0x243F_6A88_85A3_08D3u64;
        for &b in bytes {
            state = (state ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3);
        }
        Draw {
            bytes,
            pos: 0,
            state,
        }
    }

    fn byte(&mut self) -> u8 {
        if let Some(&b) = self.bytes.get(self.pos) {
            self.pos += 1;
            return b;
        }
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) as u8
    }

    /// Uniform in `0..n`, `1 <= n <= 65536`.
    fn below(&mut self, n: usize) -> usize {
        if n <= 256 {
            let limit = 256 - 256 % n;
            loop {
                let v = usize::from(self.byte());
                if v < limit {
                    return v % n;
                }
            }
        }
        let limit = 65536 - 65536 % n;
        loop {
            let v = usize::from(self.byte()) << 8 | usize::from(self.byte());
            if v < limit {
                return v % n;
            }
        }
    }
}

/// A password of `len` characters (at most [`MAX_PASSWORD_BYTES`]) from
/// [`PASSWORD_ALPHABET`] (letters and digits only unless `rules.special`),
/// with at least one character of each class `rules` requires, drawn without
/// bias from `random` (give it [`password_random_len`] bytes).
pub fn password_from_bytes(random: &[u8], len: usize, rules: PasswordRules) -> Zeroizing<String> {
    let len = len.min(MAX_PASSWORD_BYTES);
    let alphabet = if rules.special {
        PASSWORD_ALPHABET.as_bytes()
    } else {
        &PASSWORD_ALPHABET.as_bytes()[..62]
    };
    let mut draw = Draw::new(random);
    let mut buf = Zeroizing::new(Vec::with_capacity(len));
    let required = [
        (rules.upper, UPPER),
        (rules.lower, LOWER),
        (rules.digit, DIGITS),
        (rules.special, PASSWORD_SPECIALS.as_bytes()),
    ];
    for (on, class) in required {
        if on && buf.len() < len {
            buf.push(class[draw.below(class.len())]);
        }
    }
    while buf.len() < len {
        buf.push(alphabet[draw.below(alphabet.len())]);
    }
    // Fisher–Yates, so the required characters are not always in front.
    for i in (1..buf.len()).rev() {
        let j = draw.below(i + 1);
        buf.swap(i, j);
    }
    let mut out = Zeroizing::new(String::with_capacity(len));
    out.extend(buf.iter().map(|&b| char::from(b)));
    out
}

/// Shortest and longest password length accepted from users.
pub const PASSWORD_LEN_RANGE: std::ops::RangeInclusive<i64> = 12..=128;
/// Password length when none is asked for.
pub const DEFAULT_PASSWORD_LEN: usize = 24;

/// The password length to use: 24 by default, 12 to 128 when asked.
pub fn password_len(requested: Option<i64>) -> Result<usize, CoreError> {
    match requested {
        None => Ok(DEFAULT_PASSWORD_LEN),
        Some(n) if PASSWORD_LEN_RANGE.contains(&n) => Ok(n as usize),
        Some(n) => Err(invalid(format!(
            "password length {n} is out of range: use {} to {}",
            PASSWORD_LEN_RANGE.start(),
            PASSWORD_LEN_RANGE.end()
        ))),
    }
}

// ------------------------------------------------------------ TTLs

/// Longest user TTL.
pub const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// A user TTL: `15s`, `60m`, `2h`, `1d` or combinations in that order such
/// as `1h30m`; a bare number is minutes (as Akeyless's `user-ttl`). From 1
/// second to 30 days.
pub fn parse_ttl(s: &str) -> Result<Duration, CoreError> {
    let t = s.trim();
    let bad = |why: &str| {
        Err(invalid(format!(
            "invalid TTL {:?}: {why} (write e.g. 15s, 60m, 2h, 1d, 1h30m, or a number of minutes)",
            truncate(s, 40)
        )))
    };
    if t.is_empty() {
        return bad("it is empty");
    }
    let secs: u64 = if t.bytes().all(|b| b.is_ascii_digit()) {
        match t.parse::<u64>().ok().and_then(|m| m.checked_mul(60)) {
            Some(v) => v,
            None => return bad("too large"),
        }
    } else {
        let mut total: u64 = 0;
        let mut last_rank = 0u8;
        let mut rest = t;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(|b| b.is_ascii_digit()).count();
            if digits == 0 {
                return bad("each unit needs a number before it");
            }
            let Ok(n) = rest[..digits].parse::<u64>() else {
                return bad("too large");
            };
            let Some(unit) = rest[digits..].chars().next() else {
                return bad("the last number has no unit (s, m, h or d)");
            };
            let (rank, mult) = match unit.to_ascii_lowercase() {
                'd' => (1, 86_400),
                'h' => (2, 3_600),
                'm' => (3, 60),
                's' => (4, 1),
                _ => return bad("units are s, m, h and d"),
            };
            if rank <= last_rank {
                return bad("give each unit once, largest first");
            }
            last_rank = rank;
            match n.checked_mul(mult).and_then(|v| total.checked_add(v)) {
                Some(v) => total = v,
                None => return bad("too large"),
            }
            rest = &rest[digits + unit.len_utf8()..];
        }
        total
    };
    if secs == 0 {
        return bad("it must be at least 1 second");
    }
    if secs > MAX_TTL.as_secs() {
        return bad("it may be at most 30 days");
    }
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vars<'a>(name: &'a str, password: &'a str) -> Vars<'a> {
        Vars {
            name,
            password,
            expiration: "2030-01-01 00:00:00+00",
        }
    }

    fn render(kind: DbKind, t: &str, v: &Vars<'_>) -> Vec<String> {
        Statements::parse(kind, t)
            .unwrap()
            .render(v)
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn err(kind: DbKind, t: &str) -> String {
        Statements::parse(kind, t).unwrap_err().to_string()
    }

    #[test]
    fn kinds() {
        assert_eq!("MariaDB".parse::<DbKind>().unwrap(), DbKind::MySql);
        assert_eq!("postgresql".parse::<DbKind>().unwrap(), DbKind::Postgres);
        assert!(
            "oracle"
                .parse::<DbKind>()
                .unwrap_err()
                .to_string()
                .contains("use mysql")
        );
        assert_eq!(DbKind::Postgres.as_str(), "postgres");
    }

    #[test]
    fn defaults_parse_and_render() {
        let v = vars("tmp_app_abc", "Pw1");
        let m = Statements::default_creation(DbKind::MySql);
        assert_eq!(m.len(), 2);
        assert_eq!(
            m.render(&v).iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            [
                "CREATE USER 'tmp_app_abc'@'%' IDENTIFIED BY 'Pw1'",
                "GRANT SELECT ON *.* TO 'tmp_app_abc'@'%'"
            ]
        );
        assert_eq!(
            m.statement(1),
            Some("GRANT SELECT ON *.* TO '{{name}}'@'%'")
        );
        let p = Statements::default_creation(DbKind::Postgres);
        assert_eq!(
            p.render(&v)[0].as_str(),
            "CREATE ROLE \"tmp_app_abc\" WITH LOGIN PASSWORD 'Pw1' VALID UNTIL '2030-01-01 00:00:00+00'"
        );
        assert!(p.uses_name() && p.uses_password());
        // DROP OWNED, DROP ROLE: never REASSIGN OWNED to the administrator.
        let r = Statements::default_revocation(DbKind::Postgres);
        assert_eq!(r.len(), 2);
        assert!(r.stmts().iter().all(|s| !s.contains("REASSIGN")));
        assert!(!Statements::default_revocation(DbKind::MySql).uses_password());
    }

    #[test]
    fn contexts() {
        let v = vars("a\"b`c'd", "p'q\\r\"s");
        let m = render(
            DbKind::MySql,
            "X '{{password}}' \"{{password}}\" `{{name}}` {{name}} {{ password }}",
            &v,
        );
        assert_eq!(
            m[0],
            r#"X 'p''q\\r"s' "p'q\\r""s" `a"b``c'd` 'a"b`c''d' 'p''q\\r"s'"#
        );
        let p = render(
            DbKind::Postgres,
            "X '{{password}}' E'{{password}}' \"{{username}}\" {{name}} {{password}} `{{name}}`",
            &v,
        );
        assert_eq!(
            p[0],
            r#"X 'p''q\r"s' E'p''q\\r"s' "a""b`c'd" "a""b`c'd" 'p''q\r"s' `"a""b`c'd"`"#
        );
        // NUL dropped
        assert_eq!(
            render(DbKind::Postgres, "'{{password}}'", &vars("n", "a\0b"))[0],
            "'ab'"
        );
    }

    #[test]
    fn splitting() {
        let t = "CREATE USER '{{name}}'@'%' IDENTIFIED BY 'a;b'; -- comment; here\n\
                 GRANT SELECT ON `x;y`.* TO '{{name}}'@'%'; /* ; */ ;; # tail;";
        let s = Statements::parse(DbKind::MySql, t).unwrap();
        assert_eq!(s.len(), 2, "{:?}", s.stmts());
        assert_eq!(
            s.statement(0),
            Some("CREATE USER '{{name}}'@'%' IDENTIFIED BY 'a;b'")
        );
        assert!(s.statement(1).unwrap().ends_with("TO '{{name}}'@'%'"));
        // Postgres: dollar quotes and nested comments.
        let t = "DO $body$ BEGIN PERFORM 1; END $body$; /* a /* b */ ; */ GRANT x TO \"{{name}}\"";
        let s = Statements::parse(DbKind::Postgres, t).unwrap();
        assert_eq!(s.len(), 2, "{:?}", s.stmts());
        // The admin may write anything, including more statements.
        let s = Statements::parse(DbKind::MySql, "SELECT '{{name}}'; DROP TABLE x; --").unwrap();
        assert_eq!(s.len(), 2);
        // MySQL: `--x` is not a comment; `'it''s'` and `'a\'b'` stay one string.
        let s = Statements::parse(DbKind::MySql, "SELECT 1--1; SELECT 'it''s;', 'a\\';b'").unwrap();
        assert_eq!(s.len(), 2, "{:?}", s.stmts());
        // Postgres: backslash does not escape in standard strings, does in E''.
        let s = Statements::parse(DbKind::Postgres, r"SELECT 'a\'; SELECT E'b\';c'").unwrap();
        assert_eq!(s.len(), 2, "{:?}", s.stmts());
    }

    #[test]
    fn refusals() {
        use DbKind::*;
        assert!(err(MySql, "SELECT '{{nope}}'").contains("unknown placeholder {{nope}}"));
        assert!(err(MySql, "SELECT '{{name}").contains("unterminated placeholder"));
        assert!(err(MySql, "SELECT 1 -- {{name}}").contains("comment"));
        assert!(err(MySql, "SELECT 1 # {{password}}").contains("comment"));
        assert!(err(Postgres, "SELECT 1 /* {{name}} */").contains("comment"));
        assert!(err(Postgres, "SELECT 1 /* /* */ {{name}} */").contains("comment"));
        assert!(err(MySql, "CREATE USER '{{name}}").contains("unterminated quote '"));
        assert!(err(Postgres, "CREATE ROLE \"{{name}}").contains("unterminated quote \""));
        assert!(err(MySql, "SELECT 'a\\'").contains("unterminated"));
        assert!(err(Postgres, "SELECT 1 /* x").contains("unterminated comment"));
        assert!(err(Postgres, "DO $$ {{name}} $$").contains("dollar"));
        assert!(err(Postgres, "DO $a$ x").contains("unterminated dollar"));
        assert!(err(Postgres, "SELECT U&'{{password}}'").contains("U&"));
        assert!(err(MySql, "SELECT '\\{{password}}'").contains("backslash"));
        assert!(err(MySql, "/*!50000 SELECT 1 */").contains("executable"));
        assert!(err(MySql, "  ; -- x\n ;").contains("empty"));
        assert!(err(MySql, "").contains("empty"));
        assert!(err(MySql, &"SELECT 1;".repeat(51)).contains("more than 50"));
        assert!(err(MySql, &"x".repeat(MAX_TEMPLATE_LEN + 1)).contains("bytes"));
        // In a standard Postgres string, `\` before a placeholder is harmless.
        assert!(Statements::parse(Postgres, "SELECT '\\{{password}}'").is_ok());
        // `$1` is not a dollar quote; `a$b$` identifiers are not either.
        assert!(Statements::parse(Postgres, "SELECT $1, a$b$ FROM t WHERE x = '{{name}}'").is_ok());
    }

    #[test]
    fn usernames() {
        use DbKind::*;
        assert!(check_username(MySql, "tmp_a.b-c9").is_ok());
        assert!(check_username(MySql, "9abc").is_err());
        assert!(check_username(MySql, "a'b").is_err());
        assert!(check_username(MySql, &"a".repeat(33)).is_err());
        assert!(check_username(Postgres, &"a".repeat(63)).is_ok());
        assert!(check_username(Postgres, &"a".repeat(64)).is_err());

        let n = username_from_template(MySql, None, "/prod/My DB-Creds!", "Ab3dEf9hIj", 0).unwrap();
        assert_eq!(n, "tmp_my_db_cr_Ab3dEf9hIj");
        let n = username_from_template(MySql, None, "/x/'; DROP USER root; --", "r1", 0).unwrap();
        assert_eq!(n, "tmp_drop_use_r1");
        let n = username_from_template(MySql, None, "/", "r1", 0).unwrap();
        assert_eq!(n, "tmp_item_r1");
        // The item part shrinks, never the random part.
        let rnd = "R".repeat(24);
        let n = username_from_template(MySql, None, "/abcdefghij", &rnd, 0).unwrap();
        assert_eq!(n, format!("tmp_abc_{rnd}"));
        assert_eq!(n.len(), 32);
        let n = username_from_template(
            Postgres,
            Some("v_{{item}}_{{time}}_{{ random }}"),
            "/a/Reporting",
            "x1",
            1700000000,
        )
        .unwrap();
        assert_eq!(n, "v_reporting_1700000000_x1");
        let long = "z".repeat(100);
        let n = username_from_template(MySql, Some("u{{item}}{{random}}"), &long, "r", 5).unwrap();
        assert_eq!(n.len(), 32);
        assert!(n.ends_with('r'));
        let e = |t: &str| {
            username_from_template(MySql, Some(t), "/i", "9r", 0)
                .unwrap_err()
                .to_string()
        };
        assert!(e("u_{{item}}").contains("{{random}}"));
        assert!(e("u_{{.ItemName}}_{{random}}").contains("unknown placeholder {{.ItemName}}"));
        assert!(e("u'{{random}}").contains("may only contain"));
        assert!(e("{{random}}").contains("start with a letter"));
        assert!(e(&format!("{}{{{{random}}}}", "a".repeat(40))).contains("allows 32"));
        assert!(username_from_template(MySql, None, "/i", "r-1", 0).is_err());
    }

    #[test]
    fn passwords() {
        assert_eq!(password_len(None).unwrap(), 24);
        assert_eq!(password_len(Some(12)).unwrap(), 12);
        assert!(
            password_len(Some(11))
                .unwrap_err()
                .to_string()
                .contains("12 to 128")
        );
        assert!(password_len(Some(129)).is_err());
        // All-zero input still satisfies every rule.
        let all = PasswordRules {
            special: true,
            ..PasswordRules::default()
        };
        let p = password_from_bytes(&[0u8; 8], 16, all);
        assert_eq!(p.len(), 16);
        assert!(p.bytes().any(|b| b.is_ascii_uppercase()));
        assert!(p.bytes().any(|b| b.is_ascii_lowercase()));
        assert!(p.bytes().any(|b| b.is_ascii_digit()));
        assert!(p.bytes().any(|b| PASSWORD_SPECIALS.as_bytes().contains(&b)));
        let p = password_from_bytes(&[255u8; 200], 40, PasswordRules::default());
        assert!(p.bytes().all(|b| b.is_ascii_alphanumeric()));
        for bad in ['\'', '"', '\\', '%', '$', '@', ':', '/', ' '] {
            assert!(!PASSWORD_ALPHABET.contains(bad));
        }
        assert_eq!(password_from_bytes(&[], 0, all).len(), 0);
        assert_eq!(password_from_bytes(&[1, 2, 3], 2, all).len(), 2);
    }

    #[test]
    fn password_uniformity() {
        // Rough chi-square-free check: every character of the alphabet shows
        // up, and no character is wildly over-represented.
        let mut counts = [0usize; 128];
        let mut seed = 1u64;
        let mut bytes = vec![0u8; password_random_len(128)];
        for _ in 0..200 {
            for b in bytes.iter_mut() {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                *b = (seed >> 33) as u8;
            }
            let p = password_from_bytes(
                &bytes,
                128,
                PasswordRules {
                    special: true,
                    ..Default::default()
                },
            );
            for b in p.bytes() {
                counts[usize::from(b)] += 1;
            }
        }
        let expected = 200 * 128 / PASSWORD_ALPHABET.len();
        for c in PASSWORD_ALPHABET.bytes() {
            let n = counts[usize::from(c)];
            assert!(
                n > expected / 2 && n < expected * 2,
                "{} {n} vs {expected}",
                c as char
            );
        }
    }

    #[test]
    fn ttls() {
        let s = |x: &str| parse_ttl(x).unwrap().as_secs();
        assert_eq!(s("15s"), 15);
        assert_eq!(s("60m"), 3600);
        assert_eq!(s("2h"), 7200);
        assert_eq!(s("1d"), 86400);
        assert_eq!(s("1h30m"), 5400);
        assert_eq!(s("1d2h3m4s"), 93784);
        assert_eq!(s(" 60 "), 3600);
        assert_eq!(s("30d"), 30 * 86400);
        let e = |x: &str| parse_ttl(x).unwrap_err().to_string();
        assert!(e("0").contains("at least 1 second"));
        assert!(e("0s").contains("at least 1 second"));
        assert!(e("31d").contains("30 days"));
        assert!(e("43201").contains("30 days"));
        assert!(e("1x").contains("units"));
        assert!(e("30m1h").contains("largest first"));
        assert!(e("1h1h").contains("largest first"));
        assert!(e("h").contains("number"));
        assert!(e("").contains("empty"));
        assert!(e("99999999999999999999").contains("too large"));
        assert!(e("1h30").contains("no unit"));
    }

    /// Independent reader of rendered SQL: the string literals and quoted
    /// identifiers of a statement, decoded, in order.
    fn quoted_tokens(kind: DbKind, sql: &str) -> Vec<(char, String)> {
        let b: Vec<char> = sql.chars().collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            let pg_e = kind == DbKind::Postgres && c == '\'' && i > 0 && b[i - 1] == 'E';
            let quoted = match kind {
                DbKind::MySql => matches!(c, '\'' | '"' | '`'),
                DbKind::Postgres => matches!(c, '\'' | '"'),
            };
            if !quoted {
                i += 1;
                continue;
            }
            let bs = match kind {
                DbKind::MySql => c != '`',
                DbKind::Postgres => pg_e,
            };
            let mut val = String::new();
            i += 1;
            loop {
                assert!(i < b.len(), "unterminated in {sql:?}");
                if bs && b[i] == '\\' {
                    val.push(b[i + 1]);
                    i += 2;
                } else if b[i] == c && b.get(i + 1) == Some(&c) {
                    val.push(c);
                    i += 2;
                } else if b[i] == c {
                    i += 1;
                    break;
                } else {
                    val.push(b[i]);
                    i += 1;
                }
            }
            out.push((c, val));
        }
        out
    }

    fn hostile() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just('\''),
                Just('"'),
                Just('`'),
                Just('\\'),
                Just(';'),
                Just('-'),
                Just('#'),
                Just('/'),
                Just('*'),
                Just('$'),
                Just('{'),
                Just('}'),
                Just('\n'),
                any::<char>(),
                proptest::sample::select(PASSWORD_ALPHABET.chars().collect::<Vec<_>>()),
            ],
            0..24,
        )
        .prop_map(|v| v.into_iter().filter(|c| *c != '\0').collect())
    }

    proptest! {
        #[test]
        fn values_never_leave_their_quotes(name in hostile(), pw in hostile(), exp in hostile()) {
            let v = Vars { name: &name, password: &pw, expiration: &exp };
            let my = Statements::parse(
                DbKind::MySql,
                "CREATE USER '{{name}}'@'%' IDENTIFIED BY \"{{password}}\"; GRANT SELECT ON `{{name}}`.* TO {{name}}; SELECT {{password}}, {{expiration}}",
            ).unwrap();
            let r = my.render(&v);
            prop_assert_eq!(r.len(), 3);
            prop_assert_eq!(quoted_tokens(DbKind::MySql, &r[0]), vec![('\'', name.clone()), ('\'', "%".into()), ('"', pw.clone())]);
            prop_assert_eq!(quoted_tokens(DbKind::MySql, &r[1]), vec![('`', name.clone()), ('\'', name.clone())]);
            prop_assert_eq!(quoted_tokens(DbKind::MySql, &r[2]), vec![('\'', pw.clone()), ('\'', exp.clone())]);
            // Re-parsing the rendered SQL (values contain no `{{` here only
            // by chance) must find the same number of statements.
            for s in &r {
                if !s.contains("{{") {
                    prop_assert_eq!(Statements::parse(DbKind::MySql, s).map(|x| x.len()).ok(), Some(1));
                }
            }

            let pg = Statements::parse(
                DbKind::Postgres,
                "CREATE ROLE \"{{name}}\" PASSWORD '{{password}}' VALID UNTIL {{expiration}}; SELECT E'{{password}}', {{name}}",
            ).unwrap();
            let r = pg.render(&v);
            prop_assert_eq!(quoted_tokens(DbKind::Postgres, &r[0]), vec![('"', name.clone()), ('\'', pw.clone()), ('\'', exp.clone())]);
            prop_assert_eq!(quoted_tokens(DbKind::Postgres, &r[1]), vec![('\'', pw.clone()), ('"', name.clone())]);
        }

        #[test]
        fn generated_names_are_valid(item in hostile(), rnd in "[A-Za-z0-9]{1,20}", t in any::<i64>()) {
            for kind in [DbKind::MySql, DbKind::Postgres] {
                let n = username_from_template(kind, None, &item, &rnd, t).unwrap();
                prop_assert!(check_username(kind, &n).is_ok());
                prop_assert!(n.ends_with(&rnd));
                if let Ok(n) = username_from_template(kind, Some("x{{item}}-{{time}}-{{random}}"), &item, &rnd, t) {
                    prop_assert!(check_username(kind, &n).is_ok());
                    prop_assert!(n.ends_with(&rnd));
                }
            }
        }

        #[test]
        fn passwords_follow_rules(bytes in proptest::collection::vec(any::<u8>(), 0..600), len in 12usize..=128,
                                  upper: bool, lower: bool, digit: bool, special: bool) {
            let rules = PasswordRules { upper, lower, digit, special };
            let p = password_from_bytes(&bytes, len, rules);
            prop_assert_eq!(p.len(), len);
            prop_assert!(p.chars().all(|c| PASSWORD_ALPHABET.contains(c)));
            prop_assert!(!upper || p.bytes().any(|b| b.is_ascii_uppercase()));
            prop_assert!(!lower || p.bytes().any(|b| b.is_ascii_lowercase()));
            prop_assert!(!digit || p.bytes().any(|b| b.is_ascii_digit()));
            prop_assert_eq!(special, p.bytes().any(|b| PASSWORD_SPECIALS.as_bytes().contains(&b)));
        }

        #[test]
        fn ttl_never_panics(s in "\\PC{0,12}") {
            if let Ok(d) = parse_ttl(&s) {
                prop_assert!(d >= Duration::from_secs(1) && d <= MAX_TTL);
            }
        }
    }
}
