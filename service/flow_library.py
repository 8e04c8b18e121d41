"""The flows this app runs: bundled plus HEARTH_FLOWS_DIR, and older versions that conversations started on."""

from __future__ import annotations

import logging

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flows import Flow, load_flow_text, load_registry

from .clock import now
from .models import FlowVersion

log = logging.getLogger(__name__)


class FlowLibrary:
    """The registry of current flows, and any version a running conversation still needs."""

    def __init__(self, flows_dir: str | None = None) -> None:
        self.registry, self.problems = load_registry([flows_dir] if flows_dir else [])
        for problem in self.problems:
            (log.error if problem.severity == "error" else log.warning)("flow %s", problem)
        self._by_digest: dict[str, Flow] = {flow.digest: flow for flow in self.registry.flows.values()}
        self._stored: set[str] = set()  # digests known to be in flow_versions (rows are never deleted)

    @property
    def languages(self) -> set[str]:
        """Every language some current flow speaks."""
        return {language for flow in self.registry.flows.values() for language in flow.languages}

    def get(self, flow_id: str) -> Flow | None:
        """The current version of a flow."""
        return self.registry.get(flow_id)

    def version(self, session: Session, digest: str) -> Flow | None:
        """The exact flow a conversation started on, from memory or from its stored source."""
        flow = self._by_digest.get(digest)
        if flow is None:
            stored = session.get(FlowVersion, digest)
            if stored is not None:
                flow, problems = load_flow_text(stored.source_text, stored.source_path)
                if flow is not None:
                    self._by_digest[digest] = flow
        return flow

    def remember(self, session: Session, flow: Flow) -> None:
        """Store the flow's source under its digest, once, so a changed file never breaks a conversation."""
        if flow.digest in self._stored:
            return
        # Known for good only when read from the database: a version this session holds may be this
        # transaction's own insert, which leaves the session if the transaction rolls back.
        held = session.identity_key(FlowVersion, flow.digest) in session.identity_map
        if session.get(FlowVersion, flow.digest) is not None:
            if not held:
                self._stored.add(flow.digest)
            return
        version = FlowVersion(digest=flow.digest, flow_id=flow.id, version=flow.version,
                              source_path=str(flow.source_path), source_text=flow.source_text, loaded_at=now())
        try:
            with session.begin_nested():
                session.add(version)
            # The session keeps its rows only while something refers to them: this keeps the insert
            # in view, so the next start in this transaction does not take it for a stored row.
            session.info.setdefault("hearth_flow_versions", []).append(version)
        except IntegrityError:
            pass  # another process stored it first
        # Only once this transaction commits is the row certain; until then, ask again next time.
