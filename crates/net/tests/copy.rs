//! `copy::pump` behaviour with the user-space buffer copy.

const SPLICE: bool = false;

mod copy_cases;
