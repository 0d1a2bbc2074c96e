//! One module per page: the component and the server functions it calls, side by side.

pub mod banner;
pub mod chart;
pub mod compare;
pub mod dashboard;
pub mod edit;
pub mod instance;
pub mod json_tree;
pub mod run;
pub mod runs;
pub mod schema_form;
pub mod workers;
