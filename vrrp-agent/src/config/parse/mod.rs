//! Statements to the typed [`Config`](super::Config): keyword tables, value parsing,
//! keepalived's defaults and completion rules (keepalived/vrrp/vrrp.c vrrp_complete_instance),
//! then cross-checks.
//!
//! Where keepalived reports a "config error" and carries on with a guess, we refuse (an
//! error) when the guess changes behaviour, and warn when it only drops something.
//!
//! Layout: `keywords` (the block kinds and the keyword entry type; each block's table sits
//! in that block's file), `items` (statements cut into keyword items), `values` (value
//! parsers), `document` (the top-level loop and cross-checks), one file per block parser
//! (`global`, `instance`, `addresses`, `track`, `check`, `sync_group`) and `complete`
//! (keepalived's completion of an instance).

mod addresses;
mod check;
mod complete;
mod document;
mod global;
mod instance;
mod items;
mod keywords;
mod sync_group;
mod track;
mod values;

use addresses::*;
use check::*;
use complete::*;
use global::*;
use instance::*;
use items::*;
use keywords::*;
use sync_group::*;
use track::*;
use values::*;

pub(crate) use document::parse;
pub(crate) use keywords::known_keywords;

type Res<T> = Result<T, super::ConfigError>;
