"""ask: a question, then wait for the answer.

```yaml
- id: mood
  type: ask
  text: "How are you today? Reply 1-5 (1 = very low, 5 = great)"
  answer: choice
  result: mood
  choices:
    - {value: 1, words: [awful, very low], next: tell_team}
    - {value: 5, words: [great, brilliant], next: thanks}
  unreadable: {text: "Sorry, please reply with a number from 1 to 5.", tries: 2, next: give_up}
  reminder: {after: 3h}
  no_answer: {after: 8h, next: missed}
  voice: {say: "How are you today? Press 1 to 5.", keys: {"1": "1", "5": "5"}}
```
`answer` is `choice` (with `choices`, or `choices_from: params.options`),
`number` (`min`/`max`), `yes_no` (`on_yes`/`on_no`) or `text` (`skip_words`,
`on_skip`). Without `text` the ask is silent: it only listens, takes only a whole
answer ("2"), and without `unreadable.next` leaves the rest to the host.
`urgent: {contains_any: [...], next: step}` reads each reply for those words or
phrases before anything else: "awful, I want to die" goes there, not to a score.
"""
from __future__ import annotations

from flows import defaults
from flows.answers import ChoiceReader, is_skip, options_choices, read_number, word_list
from flows.durations import parse_duration
from flows.steps.ask_checks import check_ask, static_reader
from flows.steps.branch import contains_any
from flows.steps.base import DURATION, MESSAGE, NAME, STEP_ID, TEMPLATE, WAIT, Go, StepType, register

SKIP = object()


@register
class AskStep(StepType):
    """Ask, re-prompt on what it cannot read, remind, and give up in time."""

    name = "ask"
    waits = True
    properties = {
        "text": MESSAGE,
        "answer": {"enum": ["choice", "number", "yes_no", "text"]},
        "choices": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/choice"}},
        "choices_from": {"type": "string", "pattern": "^params\\.[a-z][a-z0-9_]*$"},
        "min": {"type": "number"},
        "max": {"type": "number"},
        "on_yes": STEP_ID, "on_no": STEP_ID,
        "skip_words": {"$ref": "#/$defs/words"}, "on_skip": STEP_ID,
        "next": STEP_ID,
        "result": NAME,
        "unreadable": {"type": "object", "additionalProperties": False, "properties": {
            "text": MESSAGE, "tries": {"type": "integer", "minimum": 0, "maximum": 10},
            "next": STEP_ID}},
        "urgent": {"type": "object", "additionalProperties": False, "required": ["contains_any", "next"],
                   "properties": {"contains_any": {"$ref": "#/$defs/words"}, "next": STEP_ID}},
        "reminder": {"type": "object", "additionalProperties": False, "required": ["after"],
                     "properties": {"after": DURATION, "text": MESSAGE}},
        "no_answer": {"type": "object", "additionalProperties": False, "required": ["after"],
                      "properties": {"after": DURATION, "at": TEMPLATE, "next": STEP_ID}},
        "voice": {"type": "object", "additionalProperties": False, "required": ["say"],
                  "properties": {"say": MESSAGE, "keys": {
                      "type": "object", "propertyNames": {"pattern": "^[0-9*#]$"},
                      "additionalProperties": {"type": ["string", "number"]}}}},
    }
    defs = {"choice": {
        "type": "object", "additionalProperties": False, "required": ["value"],
        "properties": {"value": {"type": ["string", "number"]}, "words": {"$ref": "#/$defs/words"},
                       "category": NAME, "next": STEP_ID}}}
    required = ("answer",)

    def prepare(self, config):
        """Word indexes built once per flow."""
        return {"reader": static_reader(config),
                "skip": frozenset(word_list(config.get("skip_words")))}

    def routes(self, config):
        """Choice routes, yes/no/skip routes, `next`, unreadable and no-answer."""
        found = [(("choices", i, "next"), c["next"])
                 for i, c in enumerate(config.get("choices") or ()) if "next" in c]
        for key in ("on_yes", "on_no", "on_skip", "next"):
            if key in config:
                found.append(((key,), config[key]))
        for key in ("unreadable", "no_answer", "urgent"):
            if "next" in (config.get(key) or {}):
                found.append(((key, "next"), config[key]["next"]))
        return found

    def falls_through(self, config):
        """An ask names every route."""
        return False

    def texts(self, config):
        """The prompt, re-prompt and reminder are SMS; `say` is speech."""
        found = [(("text",), "sms")] if "text" in config else []
        for key in ("unreadable", "reminder"):
            if "text" in (config.get(key) or {}):
                found.append(((key, "text"), "sms"))
        if "at" in (config.get("no_answer") or {}):
            found.append((("no_answer", "at"), "template"))
        if "voice" in config:
            found.append((("voice", "say"), "speech"))
        return found

    def check(self, config, scope):
        """Kind-specific fields, a route for every outcome, voice keys."""
        return check_ask(config, scope, static_reader(config))

    def enter(self, step, run):
        """Send the question and start its timers; past its no-answer time, take that route unasked."""
        run.clear_timers()
        run.state["tries"] = 0
        limit = step.get("no_answer") or {}
        at = run.moment(limit["at"]) if limit.get("at") else None
        if at is None:
            at = run.now + (parse_duration(limit.get("after", "")) or defaults.EXPIRY)
        if at <= run.now:
            return self.timeout(step, run, "no_answer")
        if step.get("text") is not None:
            voice = step.get("voice")
            script = None
            if voice is not None:
                script = {"say": run.text(voice.get("say"), step),
                          "keys": {k: str(v) for k, v in (voice.get("keys") or {}).items()}}
            run.send(step.get("text"), step, voice=script)
        reminder = step.get("reminder")
        if reminder is not None:
            run.add_timer(run.now + parse_duration(reminder["after"]), "reminder")
        run.add_timer(at, "no_answer")
        return WAIT

    def read(self, step, run, text):
        """(value, category, route) for `text`, SKIP, or None if unreadable."""
        kind = step.get("answer")
        if kind == "text":
            if not text.strip():
                return None
            if step.prepared["skip"] and is_skip(text, step.prepared["skip"]):
                return SKIP
            return text.strip(), None, step.get("next")
        if kind == "number":
            number = read_number(text, step.get("min"), step.get("max"))
            return None if number is None else (number, None, step.get("next"))
        reader = step.prepared["reader"]
        if reader is None:
            source = step.get("choices_from", "params.options").split(".", 1)[1]
            reader = ChoiceReader(options_choices(run.params.get(source), step.get("next")), numbers_first=True)
        choice = reader.read(text, whole=step.get("text") is None)
        return None if choice is None else (choice.value, choice.category, choice.next)

    def receive(self, step, run, text):
        """Take the answer, or re-prompt, or after too many tries fall back."""
        text = text[: defaults.MAX_ANSWER_CHARS]
        urgent = step.get("urgent")
        if urgent is not None and contains_any(text, urgent["contains_any"]):
            run.answer(step, text)  # read before the answer: "awful, I want to die" is not a 1 to 5
            return Go(urgent["next"])
        answer = self.read(step, run, text)
        if answer is None:
            return self._unreadable(step, run)
        run.answer(step, text)
        if answer is SKIP:
            return Go(step.get("on_skip") or step.get("next"))
        value, category, target = answer
        if step.get("result"):
            run.save(step.get("result"), value, step, category)
        return Go(target or step.get("next"))

    def _unreadable(self, step, run):
        unreadable = step.get("unreadable") or {}
        if step.get("text") is None and "next" not in unreadable:
            return None  # a silent ask does not take what is not an answer
        run.state["tries"] = run.state.get("tries", 0) + 1
        if run.state["tries"] > unreadable.get("tries", defaults.UNREADABLE_TRIES):
            return Go(unreadable.get("next"))
        again = unreadable.get("text", step.get("text"))
        if again is not None:
            run.send(again, step)
        return WAIT

    def timeout(self, step, run, kind):
        """Remind once; on no answer take the no-answer route."""
        if kind == "reminder":
            reminder = step.get("reminder") or {}
            again = reminder.get("text", step.get("text"))
            if again is not None:
                run.send(again, step)
            return WAIT
        if kind == "no_answer":
            return Go((step.get("no_answer") or {}).get("next"))
        return None
