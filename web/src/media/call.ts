/**
 * One person's media in a call, framework-free: the SFU's signaling protocol (see
 * services/sfu/sfu/server.py) over its WebSocket and one RTCPeerConnection.
 *
 * join token -> {"type":"join"} -> "joined" -> an offer whose sendonly transceivers are what
 * this person publishes (microphone, camera, screen; `sources` names them by mid) and whose
 * recvonly transceivers are the slots the SFU fills (a few videos, the three loudest voices)
 * -> "answer"; then "slots" whenever who is shown changes, and the admin's "muted", "rights",
 * "moved", "recording", "removed", "ended", "error" (e.g. call.screen_not_allowed, CA-4).
 */

export type Source = 'microphone' | 'camera' | 'screen'
export interface Shown {
  user_id: string
  source: Source
}
export type CallEvent =
  | { type: 'track'; mid: string; track: MediaStreamTrack }
  | { type: 'slots'; slots: Record<string, Shown | null> }
  | { type: 'state'; state: string }
  | { type: 'joined'; userId: string; rights: string[]; muted: boolean; role: string }
  | { type: 'rights'; rights: string[] }
  | { type: 'muted'; muted: boolean }
  | { type: 'recording'; recording: boolean } // CA-6: the call is recorded now (told at join and on each change)
  | { type: 'moved'; room: string } // the call's room: 'main' or a breakout room's id (room-<n>)
  | { type: 'closed'; reason: 'ended' | 'removed' | 'left' | 'lost' }
  | { type: 'error'; code: string; source?: string; message?: string }

export interface CallOptions {
  sfuUrl: string
  token: string
  iceServers: RTCIceServer[]
  media: MediaStream
  videoSlots?: number
  audioSlots?: number
  /** false for a broadcast's viewer: nothing is offered to send, only the slots to receive (CA-9) */
  publish?: boolean
}

export interface CallStats {
  inboundVideoFrames: number
  inboundAudioPackets: number
  outboundVideoFrames: number
  outboundAudioPackets: number
}

export class CallConnection {
  readonly slots: Record<string, Shown | null> = {}
  readonly tracks: Record<string, MediaStreamTrack> = {}
  rights: string[] = []
  sharing = false
  private pc: RTCPeerConnection | null = null
  private ws: WebSocket | null = null
  private screenSender: RTCRtpSender | null = null
  private readonly handlers = new Set<(event: CallEvent) => void>()
  private closed = false
  private callId = ''

  constructor(private readonly options: CallOptions) {}

  on(handler: (event: CallEvent) => void): () => void {
    this.handlers.add(handler)
    return () => this.handlers.delete(handler)
  }

  private emit(event: CallEvent): void {
    for (const handler of this.handlers) handler(event)
  }

  join(): void {
    const { media, videoSlots = 4, audioSlots = 3, publish = true } = this.options
    const pc = new RTCPeerConnection({ iceServers: this.options.iceServers, bundlePolicy: 'max-bundle' })
    this.pc = pc
    const sources: Source[] = []
    if (publish) {
      for (const track of media.getTracks()) {
        pc.addTransceiver(track, { direction: 'sendonly' })
        sources.push(track.kind === 'audio' ? 'microphone' : 'camera')
      }
      this.screenSender = pc.addTransceiver('video', { direction: 'sendonly' }).sender
      sources.push('screen')
    }
    for (let i = 0; i < videoSlots; i++) pc.addTransceiver('video', { direction: 'recvonly' })
    for (let i = 0; i < audioSlots; i++) pc.addTransceiver('audio', { direction: 'recvonly' })
    pc.ontrack = (event) => {
      const mid = event.transceiver.mid ?? ''
      this.tracks[mid] = event.track
      this.emit({ type: 'track', mid, track: event.track })
    }
    pc.onconnectionstatechange = () => {
      this.emit({ type: 'state', state: pc.connectionState })
      if (pc.connectionState === 'failed' && !this.closed) this.finish('lost')
    }
    const ws = new WebSocket(this.options.sfuUrl)
    this.ws = ws
    ws.onopen = () => ws.send(JSON.stringify({ type: 'join', token: this.options.token }))
    ws.onclose = () => {
      if (!this.closed) this.finish('lost')
    }
    ws.onmessage = async (event) => {
      const message = JSON.parse(String(event.data))
      switch (message.type) {
        case 'joined': {
          this.rights = message.rights ?? []
          this.callId = String(message.call_id ?? '')
          this.emit({ type: 'joined', userId: message.user_id, rights: this.rights, muted: Boolean(message.muted),
                      role: message.role })
          if (typeof message.recording === 'boolean') this.emit({ type: 'recording', recording: message.recording })
          if (message.muted) this.setMicrophone(false)
          if (message.ice_servers?.length) pc.setConfiguration({ ...pc.getConfiguration(), iceServers: message.ice_servers })
          await pc.setLocalDescription(await pc.createOffer())
          await new Promise<void>((resolve) => { // the SFU takes the candidates in the offer (no trickle)
            if (pc.iceGatheringState === 'complete') return resolve()
            pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && resolve()
            setTimeout(resolve, 3000)
          })
          const mids: Record<string, Source> = {}
          pc.getTransceivers().forEach((t, i) => {
            if (i < sources.length && t.mid !== null) mids[t.mid] = sources[i]!
          })
          ws.send(JSON.stringify({ type: 'offer', sdp: pc.localDescription?.sdp, sources: mids }))
          break
        }
        case 'answer':
          await pc.setRemoteDescription({ type: 'answer', sdp: message.sdp })
          break
        case 'slots':
          Object.assign(this.slots, message.slots)
          this.emit({ type: 'slots', slots: { ...this.slots } })
          break
        case 'rights':
          this.rights = message.rights ?? []
          this.emit({ type: 'rights', rights: this.rights })
          break
        case 'muted':
        case 'unmuted':
          if (message.type === 'muted') this.setMicrophone(false)
          this.emit({ type: 'muted', muted: message.type === 'muted' })
          break
        case 'recording':
          this.emit({ type: 'recording', recording: Boolean(message.recording) })
          break
        case 'moved':
          this.emit({ type: 'moved', room: callRoom(String(message.room), this.callId) })
          break
        case 'removed':
        case 'ended':
          this.finish(message.type)
          break
        case 'error':
          // A screen offered at join without the right is refused at once: it matters only while sharing.
          if (message.code === 'call.screen_not_allowed' && !this.sharing) break
          if (message.code === 'call.screen_not_allowed') void this.shareScreen(null)
          this.emit({ type: 'error', code: message.code, source: message.source, message: message.message })
          break
      }
    }
  }

  setMicrophone(on: boolean): void {
    this.options.media.getAudioTracks().forEach((t) => (t.enabled = on))
  }

  setCamera(on: boolean): void {
    this.options.media.getVideoTracks().forEach((t) => (t.enabled = on))
  }

  /** Another camera or microphone in the call (its settings, CA-10): the new track replaces the one sent, on the
   * same sender (nothing renegotiated), as on or off as the one it replaces; the old one is let go. */
  async replaceDevice(track: MediaStreamTrack): Promise<void> {
    const media = this.options.media
    const old = (track.kind === 'audio' ? media.getAudioTracks() : media.getVideoTracks())[0]
    track.enabled = old?.enabled ?? true
    const sender = this.pc?.getSenders().find((s) => s !== this.screenSender && s.track === old && old)
    await sender?.replaceTrack(track)
    if (old) {
      media.removeTrack(old)
      old.stop()
    }
    media.addTrack(track)
  }

  /** The labels of the camera and microphone tracks being sent now (the settings show them; tests read them). */
  sending(): { audio: string | null; video: string | null } {
    const sent = (this.pc?.getSenders() ?? []).filter((s) => s !== this.screenSender && s.track)
    const label = (kind: string) => sent.find((s) => s.track?.kind === kind)?.track?.label ?? null
    return { audio: label('audio'), video: label('video') }
  }

  /** Share a screen track (or stop with null); false when the call does not allow it now (CA-4). */
  async shareScreen(track: MediaStreamTrack | null): Promise<boolean> {
    if (track && !this.rights.includes('screen')) {
      track.stop()
      return false
    }
    const previous = this.screenSender?.track
    await this.screenSender?.replaceTrack(track)
    if (previous && previous !== track) previous.stop()
    this.sharing = Boolean(track)
    if (track) track.onended = () => void this.shareScreen(null)
    return true
  }

  leave(): void {
    this.ws?.send(JSON.stringify({ type: 'leave' }))
    this.finish('left')
  }

  private finish(reason: 'ended' | 'removed' | 'left' | 'lost'): void {
    if (this.closed) return
    this.closed = true
    if (this.ws) {
      this.ws.onclose = null
      this.ws.close()
    }
    this.pc?.close()
    this.screenSender?.track?.stop()
    this.emit({ type: 'closed', reason })
  }

  /** The level of each voice received now, by the mid of its slot (see audioLevels). */
  async levels(): Promise<Record<string, number>> {
    return this.pc && !this.closed ? audioLevels(this.pc) : {}
  }

  async stats(): Promise<CallStats> {
    const out: CallStats = { inboundVideoFrames: 0, inboundAudioPackets: 0, outboundVideoFrames: 0, outboundAudioPackets: 0 }
    if (!this.pc) return out
    ;(await this.pc.getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'video') out.inboundVideoFrames += r.framesDecoded || 0
      if (r.type === 'inbound-rtp' && r.kind === 'audio') out.inboundAudioPackets += r.packetsReceived || 0
      if (r.type === 'outbound-rtp' && r.kind === 'video') out.outboundVideoFrames += r.framesEncoded || 0
      if (r.type === 'outbound-rtp' && r.kind === 'audio') out.outboundAudioPackets += r.packetsSent || 0
    })
    return out
  }
}

/**
 * The level (0..1) of each voice received, by the mid of its slot: the receivers' synchronization
 * sources (the RTP audio-level header, when the sender put it) or else the decoded level in getStats.
 */
export async function audioLevels(pc: RTCPeerConnection): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const t of pc.getTransceivers()) {
    if (t.receiver.track.kind !== 'audio' || t.mid === null || t.currentDirection === 'sendonly') continue
    const sources = t.receiver.getSynchronizationSources?.() ?? []
    const level = Math.max(-1, ...sources.map((s) => s.audioLevel ?? -1))
    if (level >= 0) out[t.mid] = level
  }
  const fromStats = levelsFromStats(await pc.getStats())
  for (const [mid, level] of Object.entries(fromStats)) out[mid] = Math.max(out[mid] ?? 0, level)
  return out
}

/** Inbound audio levels by mid from a stats report (Chromium reports `mid` and `audioLevel` on inbound-rtp). */
export function levelsFromStats(report: { forEach(cb: (value: Record<string, unknown>) => void): void }):
  Record<string, number> {
  const out: Record<string, number> = {}
  report.forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'audio' && typeof r.mid === 'string') {
      out[r.mid] = typeof r.audioLevel === 'number' ? r.audioLevel : 0
    }
  })
  return out
}

/** The SFU names a call's rooms "<call id>" (the main room) and "<call id>/<room>" (CA-5); the call's API names
 * them "main" and "<room>" (its breakout_rooms' keys): the SFU's name in the API's terms. */
export function callRoom(sfuRoom: string, callId: string): string {
  if (sfuRoom === callId) return 'main'
  return callId && sfuRoom.startsWith(`${callId}/`) ? sfuRoom.slice(callId.length + 1) : sfuRoom
}

/** The average brightness (0-255) of what a video element shows, or null before its first frame. */
export function brightness(video: HTMLVideoElement | null | undefined): number | null {
  if (!video || !video.videoWidth) return null
  const canvas = document.createElement('canvas')
  canvas.width = 64
  canvas.height = 48
  const context = canvas.getContext('2d')
  if (!context) return null
  context.drawImage(video, 0, 0, 64, 48)
  const pixels = context.getImageData(0, 0, 64, 48).data
  let sum = 0
  for (let i = 0; i < pixels.length; i += 4) sum += (pixels[i]! + pixels[i + 1]! + pixels[i + 2]!) / 3
  return sum / (pixels.length / 4)
}
