"""The scheduler: monitors, triggers and run requests on one lease-protected loop."""

from loopml.scheduler._loop import LoopStory, play_loop
from loopml.scheduler._scheduler import Scheduler, TickReport, execute_next_request

__all__ = ["LoopStory", "Scheduler", "TickReport", "execute_next_request", "play_loop"]
