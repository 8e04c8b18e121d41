"""Hearth's flow engine: flow files in, events out. No web, database or queue.

A step returns events; the host stores the session state (plain JSON) and
turns events into messages, results, alerts and timers.
"""
from __future__ import annotations

from flows.context import Context, Outcome
from flows.engine import awaits_answer, only_listens, question, resume, start
from flows.events import FlowEnded, RaiseAlert, SaveResult, Send, SetField, StartFlow, WaitUntil
from flows.examples import ExampleResult, run_examples
from flows.exceptions import FlowError
from flows.flow import Flow
from flows.folding import fold
from flows.inputs import Expire, Message, Timeout
from flows.loader import load_flow_file, load_flow_text
from flows.problem import Problem
from flows.registry import Registry, load_registry
from flows.schedule import next_occurrence, previous_occurrence
from flows.triggers import keyword_params

__all__ = [
    "Flow", "Problem", "FlowError", "Registry", "load_flow_text", "load_flow_file",
    "load_registry", "start", "resume", "Context", "Message", "Timeout", "Expire",
    "Outcome", "Send", "SaveResult", "SetField", "RaiseAlert", "WaitUntil", "StartFlow",
    "FlowEnded", "run_examples", "next_occurrence", "previous_occurrence", "fold",
    "ExampleResult", "keyword_params", "awaits_answer", "only_listens", "question",
]
