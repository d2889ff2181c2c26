"""`srcgrad.autograd.profiler`: profile, record_function (runtime.profiler)."""

from srcgrad.runtime.profiler import EventList, FunctionEvent, FunctionEventAvg, profile, record_function

__all__ = ["profile", "record_function", "EventList", "FunctionEvent", "FunctionEventAvg"]
