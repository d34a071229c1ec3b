"""Tuning constants of the ingest pipeline, each with the reason for its value."""

from __future__ import annotations

from parkcarbon.units import Carrier

# Largest plausible flow through ONE meter, in the carrier's canonical unit per hour,
# after the multiplier. Values are ~10x the biggest single consumer one expects in a
# chemical park (Kuqa: refineries, methanol, polysilicon), so they only catch unit
# mistakes (Wh sent as kWh, m³ as 万m³) and garbage, never a real plant.
MAX_FLOW_PER_HOUR: dict[Carrier, float] = {
    Carrier.electricity: 2_000_000.0,  # kWh/h = 2 GW, above any single grid connection
    Carrier.natural_gas: 1_000_000.0,  # m³/h; a large methanol plant draws ~100,000
    Carrier.water: 100_000.0,  # m³/h; a large refinery's intake is ~10,000
    Carrier.heat: 10_000.0,  # GJ/h ≈ 2.8 GW thermal
    Carrier.steam: 5_000.0,  # t/h; the largest industrial boilers make ~1,000
    Carrier.diesel: 100.0,  # t/h; a fleet depot fills well below this
    Carrier.coal: 2_000.0,  # t/h; a 1 GW coal unit burns ~400
}
# An interval reading is the amount since the previous one; allow it to cover up to a
# day of missed reports at the maximum flow before calling it absurd.
MAX_INTERVAL_HOURS = 24.0
# A cumulative register cannot hold more than 50 years at the maximum flow.
MAX_REGISTER_HOURS = 50 * 365 * 24.0

# Epoch timestamps at or above this are milliseconds (1e11 s is the year 5138,
# 1e11 ms is 1973), below it seconds.
EPOCH_MS_THRESHOLD = 1e11

# QoS 1 messages the broker may have in flight to ingest (MQTT 5 Receive Maximum).
# It bounds the messages held unacknowledged (packet ids are 16-bit, 65,535 at most)
# and matches max_inflight_messages in config/mosquitto/mosquitto.conf; a commit takes
# a few milliseconds; 4,000 lets each writer commit ~1,000 messages at once while the
# broker keeps sending (measured: batched payloads 62k -> 108k readings/s vs 1,000).
RECEIVE_MAXIMUM = 4000

# Writer threads, each with its own connection: while one commits (waiting on the
# server's fsync and index work, GIL released) the next batch is already being written.
# Acknowledgements still go out in receive order.
WRITER_THREADS = 2

# Messages per commit at most: with every writer holding a batch, half the in-flight
# window is still open, so the broker keeps sending while batches are being committed.
MAX_BATCH_MESSAGES = RECEIVE_MAXIMUM // (2 * WRITER_THREADS)

# Group commit: a writer collecting a batch sleeps in slices of this length while
# messages accumulate (instead of a wake-up per message). The ingest process forwards
# what it received to the store worker at the same pace.
LINGER_SLICE_SECONDS = 0.005

# Adaptive commit (the broker's window). A broker that lets only a few messages out
# unacknowledged (RabbitMQ's mqtt.prefetch 10) stops sending until ingest acknowledges,
# so waiting out flush_interval_seconds for more was pure loss (measured on RabbitMQ:
# 27 ms per cycle of ten messages, 271 msg/s). The service learns the window as the
# most messages it has held unacknowledged on the connection; when it holds that many
# again, or nothing arrived for IDLE_GAP_SECONDS while messages wait for their commit,
# it tells the store worker to commit at once. A wide window (Mosquitto's 4,000) keeps
# filling the batches and is rarely full, so its batches stay large.
IDLE_GAP_SECONDS = LINGER_SLICE_SECONDS
# The window is only trusted once the count of unacknowledged messages has come back to
# the same ceiling (a rising count during a burst's ramp-up is not a full window).
WINDOW_MIN_MESSAGES = 2
# A writer waiting for more chunks checks for a stop at least this often.
STOP_CHECK_SECONDS = 0.05

# A chunk (what the ingest process forwards to the store worker at once, acknowledged
# as a whole once committed) holds at most this many messages and about this much
# payload: a batch of chunks then stays near batch_size readings (a 100-reading message
# is ~5 KB). Unbounded chunks made batches of ~60,000 readings and stalled the
# pipeline (measured: 9 commits for 600,000 readings).
CHUNK_MAX_MESSAGES = 250
CHUNK_MAX_BYTES = 128 * 1024

# Database outage: retry the batch in hand with exponential backoff, up to this delay.
DB_RETRY_INITIAL_SECONDS = 0.2
DB_RETRY_MAX_SECONDS = 10.0

# Broker reconnect backoff and keepalive: parkcarbon.mqtt (one for every client).

# One-line summary in the log every this many seconds.
SUMMARY_INTERVAL_SECONDS = 60.0

# Dead letters keep at most this many bytes of an oversized payload (the reason says
# how long it was): enough to identify the sender without storing megabytes.
DEAD_LETTER_PAYLOAD_KEEP_BYTES = 4096

# --- broker sessions (parkcarbon.ingest.service, parkcarbon.ingest.session) ----------

# MQTT 5 DISCONNECT reason code: another client connected with the same client id.
SESSION_TAKEN_OVER = 142
# After a takeover, wait this long before reconnecting (paho's normal backoff is 1 s,
# so two instances with one client id kicked each other off ~once a second: 125
# takeovers in 2 minutes); a second takeover in a row stops this instance.
TAKEOVER_BACKOFF_SECONDS = 60.0
TAKEOVERS_BEFORE_STOPPING = 2
# A connection that stayed up this long ends a takeover streak.
TAKEOVER_STREAK_RESET_SECONDS = 600.0
# Without reason code 142 (MQTT 3.1.1, and Mosquitto 2.0 even with MQTT 5, which just
# closes the older connection): this many connections in a row dropped within this many
# seconds of the broker accepting them is the takeover pattern (a broker restart drops
# one connection, then refuses new ones for a while).
TAKEOVER_SUSPECT_DROPS = 3
TAKEOVER_SUSPECT_SECONDS = 10.0
# "cannot connect to the broker" at most once per this many seconds while it lasts.
CONNECT_FAIL_LOG_INTERVAL_SECONDS = 60.0
# Mosquitto's count of messages it dropped (queue limits, in-flight limits), published
# every sys_interval (10 s) to $SYS; other brokers ignore the subscription.
SYS_DROPPED_TOPIC = "$SYS/broker/publish/messages/dropped"
