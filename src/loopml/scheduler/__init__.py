"""The scheduler: monitors, triggers and run requests on one lease-protected loop."""

from loopml.scheduler._scheduler import Scheduler, TickReport, execute_next_request

__all__ = ["Scheduler", "TickReport", "execute_next_request"]
