//! Work orders (工单) and their closed loop: the pure state machine and the
//! working-day clock that times every step.

pub mod clock;
pub mod machine;

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
