//! `copy::pump` behaviour with splice(2) through pipes.

const SPLICE: bool = true;

mod copy_cases;
