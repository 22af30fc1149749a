//! The program: the command line, what each command does, and the one
//! place where errors become exit codes and hints.

pub mod cli;
pub mod commands;
pub mod exit;
pub mod logging;
pub mod secrets;
pub mod signals;
