# SPDX-License-Identifier: Apache-2.0
"""Writes the seed corpus of fuzz_websocket (tests/fuzz/corpus/websocket): what paho-mqtt sends
over WebSocket (the Upgrade request and its masked frames), captured by a minimal server that
answers the Upgrade and each CONNECT/SUBSCRIBE/PUBLISH with the right acknowledgement; plus
hand-made frames paho does not send (ping, close, fragments, 16-bit lengths) and
round-trip inputs (an MQTT byte stream for mode 1).

Each seed is fuzz_websocket's layout: byte 0 (bit 0: mode, bits 1..7: chunk seed), then data.

  /usr/bin/python3 tests/fuzz/capture_websocket_seeds.py [OUT_DIR]
"""
import base64
import hashlib
import os
import socket
import struct
import sys
import threading

import paho.mqtt.client as mqtt

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__),
                                                          "corpus", "websocket")
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def server_frame(payload, opcode=0x2):
    n = len(payload)
    head = bytes([0x80 | opcode])
    head += bytes([n]) if n < 126 else (b"\x7e" + struct.pack(">H", n))
    return head + payload


def client_frame(payload, opcode=0x2, fin=True, mask=b"\x01\x02\x03\x04"):
    n = len(payload)
    if n < 126:
        head = bytes([(0x80 if fin else 0) | opcode, 0x80 | n])
    elif n < 65536:
        head = bytes([(0x80 if fin else 0) | opcode, 0xFE]) + struct.pack(">H", n)
    else:
        head = bytes([(0x80 if fin else 0) | opcode, 0xFF]) + struct.pack(">Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def unmask_frames(data):
    """Yields (opcode, payload) of the client frames in `data` (complete ones only)."""
    pos = 0
    while pos + 2 <= len(data):
        opcode, n = data[pos] & 0x0F, data[pos + 1] & 0x7F
        pos += 2
        if n == 126:
            n, pos = struct.unpack(">H", data[pos:pos + 2])[0], pos + 2
        elif n == 127:
            n, pos = struct.unpack(">Q", data[pos:pos + 8])[0], pos + 8
        mask, pos = data[pos:pos + 4], pos + 4
        if pos + n > len(data):
            return
        yield opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(data[pos:pos + n]))
        pos += n


def serve(listener, record):
    conn, _ = listener.accept()
    head = b""
    while b"\r\n\r\n" not in head:
        head += conn.recv(4096)
    record.extend(head)
    key = [line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
           if line.lower().startswith(b"sec-websocket-key:")][0]
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept +
                 b"\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n")
    frames = bytearray()
    answered = 0
    while True:
        data = conn.recv(65536)
        if not data:
            break
        record.extend(data)
        frames.extend(data)
        mqtt_packets = [p for op, p in unmask_frames(bytes(frames)) if op in (0, 2)]
        for packet in mqtt_packets[answered:]:
            kind = packet[0] >> 4
            if kind == 1:
                conn.sendall(server_frame(b"\x20\x02\x00\x00"))
            elif kind == 8:
                conn.sendall(server_frame(b"\x90\x03" + packet[2:4] + b"\x01"))
            elif kind == 3 and (packet[0] & 6) == 2:
                tlen = struct.unpack(">H", packet[2:4])[0]
                conn.sendall(server_frame(b"\x40\x02" + packet[4 + tlen:6 + tlen]))
        answered = len(mqtt_packets)
    conn.close()


def capture_paho():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    record = bytearray()
    thread = threading.Thread(target=serve, args=(listener, record), daemon=True)
    thread.start()
    client = mqtt.Client(client_id="ws-seed", transport="websockets")
    client.ws_set_options(path="/mqtt")
    client.connect("127.0.0.1", listener.getsockname()[1])
    client.loop_start()
    client.subscribe("a/#", qos=1)
    client.publish("a/b", b"x" * 200, qos=1).wait_for_publish(5)
    client.publish("a/c", b"y", qos=0)
    client.disconnect()
    client.loop_stop()
    thread.join(5)
    return bytes(record)


def write(name, first, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(bytes([first]) + data)


def main():
    os.makedirs(OUT, exist_ok=True)
    paho = capture_paho()
    write("paho-session-whole", 0, paho)
    write("paho-session-chunks", 23 << 1, paho)
    head = paho[:paho.index(b"\r\n\r\n") + 4]
    connect = b"\x10\x10\x00\x04MQTT\x04\x02\x00\x3c\x00\x04fuzz"
    frames = (client_frame(connect[:5], fin=False) + client_frame(b"", opcode=0x9) +
              client_frame(connect[5:], opcode=0x0) +
              client_frame(b"\x30\x80\x01" + b"\x00\x01t" + b"p" * 125) +
              client_frame(b"\xc0\x00" * 150) +
              client_frame(b"\x03\xe8", opcode=0x8))
    write("fragments-ping-long-close", 5 << 1, head + frames)
    write("frames-without-upgrade", 0, frames)
    write("upgrade-v31-subprotocol", 0,
          head.replace(b"ocol: mqtt", b"ocol: mqttv3.1, mqtt"))
    write("upgrade-refused-path", 0, head.replace(b"GET /mqtt", b"GET /other?x=1"))
    write("text-frame", 0, client_frame(b"hello", opcode=0x1))
    stream = bytes(b for op, p in unmask_frames(paho[len(head):]) if op in (0, 2) for b in p)
    write("roundtrip-paho-stream", 1 | (9 << 1), stream)
    write("roundtrip-bytes", 1 | (3 << 1), bytes(range(256)) * 3)


if __name__ == "__main__":
    main()
