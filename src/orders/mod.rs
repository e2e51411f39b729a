//! Work orders (工单) and their closed loop: the pure state machine, the
//! working-day clock that times every step, storage, timers and the API.

pub mod api;
pub mod calendar;
pub mod clock;
pub mod dispatch;
pub mod machine;
pub mod refs;
pub mod store;
pub mod timers;
pub mod units;

impl crate::error::CodedError for machine::MachineError {
    fn code(&self) -> &'static str {
        machine::MachineError::code(self)
    }
}

impl crate::error::CodedError for clock::ClockError {
    fn code(&self) -> &'static str {
        clock::ClockError::code(self)
    }
}
