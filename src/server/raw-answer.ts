// A whole HTTP answer written straight to a socket Node's HTTP server no longer (or never did) handle:
// the listener's edge cases, and the connections a held port answers when pscache stops (hold.ts). A leaf,
// so that holding the port loads nothing more.

export function rawAnswer(status: string, type: string, message: string, headers = ''): string {
  const body = JSON.stringify({ __type: type, message });
  return `HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n${headers}Connection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}
