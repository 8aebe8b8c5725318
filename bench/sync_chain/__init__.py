"""The synchronous REST chain of `bench/sync_vs_async.py`: the "exam passed" request answered only
after every downstream service has done its part, each called over HTTP in turn.

Seven small FastAPI processes stand in for the platform's services (the platform's services have no
synchronous "do your part now" endpoints: they react to events). Each has its own SQLite database
opened through the same stack as the real services (`scte.kit.db.create_engine`: SQLAlchemy async,
the services' inline SQLite driver `sqlite+scte`, WAL, `BEGIN IMMEDIATE`), verifies the caller's
Ed25519 token like every real route, and
does the work the real handler does for the same event, using the real domain code where there is
some (`score_attempt`, `award`, `milestones`, `designations`, the notification templates and the
SMTP provider):

- learning (the orchestrator, the member's request): checks the exam and the paid fees, scores the
  attempt, stores it; then calls the others in turn and answers when the last one has answered;
- certification: awards the certification (`effect_of_exam_pass`, `award`), stores it and its
  milestone schedule;
- members: stores the held certification and recomputes the member's designations;
- notifications: renders the "exam passed", "certified" and "employee certified" notices and sends
  each by SMTP to the mail server, with a delivery log row before and after each send;
- search: rewrites the member's directory entry in an FTS5 index;
- companies: stores the employee's certification and recomputes the company's certified headcount;
- reports: counts the award per program per UTC month.

Read models the real services build from events (a member's e-mail, employer, directory entry) are
loaded into each stand-in's database by the bench before the run (`PUT /prep/members/{id}`).

    python -m sync_chain <role> --port N --data DIR [--smtp-port N] [--downstream role=url,...]
"""
