"""calls: video lessons, calls and broadcasts on Sfera's own WebRTC SFU (docs/rules.md CA-*)."""
