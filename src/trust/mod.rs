pub mod rollback;
