/**
 * The call this person is in (issue #15, CA-*): its state lives here, outside the call view, so that
 * leaving /call/<id> for another page of the app keeps the call running (minimised, CallDock.vue) and
 * coming back shows it again without joining anew. The media themselves are web/src/media (framework-free).
 */
import { defineStore } from 'pinia'
import { computed, reactive, ref, shallowReactive } from 'vue'

import { api, call as request, type Schemas } from '@/api/client'
import { useChats } from '@/features/chats/store'
import { brightness, CallConnection, type Shown } from '@/media/call'
import { ActiveSpeaker, levelsByUser } from '@/media/speakers'

export type CallInfo = Schemas['CallView']
export type Phase = 'idle' | 'check' | 'joining' | 'in' | 'closed'
export type Layout = 'grid' | 'speaker'
/** A message for the person: an i18n key under calls. with its parameters ('raw': a server's own text). */
export interface Notice {
  key: string
  params?: Record<string, string>
}
export interface Tile {
  mid: string
  userId: string
  source: Shown['source']
}

const LEVEL_EVERY_MS = 250

export const useCall = defineStore('call', () => {
  const chats = useChats()
  const callId = ref<string | null>(null)
  const info = ref<CallInfo | null>(null)
  const error = ref<unknown>(null)
  const notice = ref<Notice | null>(null)
  const phase = ref<Phase>('idle')
  const closedReason = ref('')
  const media = ref<MediaStream | null>(null)
  const cameras = ref<MediaDeviceInfo[]>([])
  const microphones = ref<MediaDeviceInfo[]>([])
  const cameraId = ref('')
  const microphoneId = ref('')
  const checking = ref(false)
  const micOn = ref(true)
  const camOn = ref(true)
  const hand = ref(false)
  const sharing = ref(false)
  const mutedByAdmin = ref(false)
  const slots = reactive<Record<string, Shown | null>>({})
  const tracks = shallowReactive<Record<string, MediaStreamTrack>>({})
  const rights = ref<string[]>([])
  const myId = ref('')
  const layout = ref<Layout>('grid')
  /** the user id of the voice heard most now (the active speaker), from the received audio levels */
  const speaker = ref<string | null>(null)
  const chatOpen = ref(false)
  let connection: CallConnection | null = null
  let poll: ReturnType<typeof setInterval> | null = null
  let levelTimer: ReturnType<typeof setInterval> | null = null
  let devices: Promise<void> = Promise.resolve()
  let detector = new ActiveSpeaker()

  const me = computed(() => myId.value || chats.me || '')
  const isAdmin = computed(() => Boolean(info.value && info.value.started_by === me.value))
  /** A broadcast's viewer only receives (CA-9): no camera, microphone, screen or hand. */
  const viewer = computed(() => {
    const i = info.value
    if (!i || i.kind !== 'broadcast') return false
    return i.started_by !== me.value && !(i.presenter_ids ?? []).includes(me.value)
  })
  const active = computed(() => phase.value === 'in' || phase.value === 'joining')
  const participants = computed(() => (info.value?.participants ?? []).filter((p) => p.connected))
  /** The videos received: screens first (shown large), then cameras. */
  const tiles = computed<Tile[]>(() => {
    const out: Tile[] = []
    for (const [mid, track] of Object.entries(tracks)) {
      const shown = slots[mid]
      if (track.kind === 'video' && shown) out.push({ mid, userId: shown.user_id, source: shown.source })
    }
    return out.sort((a, b) => Number(b.source === 'screen') - Number(a.source === 'screen'))
  })
  const audioMids = computed(() => Object.keys(tracks).filter((mid) => tracks[mid]!.kind === 'audio'))
  /** The tile shown large: a screen, else the active speaker's camera, else the first. */
  const focus = computed<Tile | null>(() => tiles.value.find((t) => t.source === 'screen')
    ?? tiles.value.find((t) => t.userId === speaker.value) ?? tiles.value[0] ?? null)

  function say(key: string, params?: Record<string, string>): void {
    notice.value = { key, params }
  }

  // Each read of the call and each view an action returned is numbered: a read answered after a later one, or
  // after an action's view, is stale (a poll begun before "start recording" said it was not recording).
  let infoSeq = 0

  async function loadInfo(): Promise<void> {
    if (!callId.value) return
    const id = callId.value
    const seq = ++infoSeq
    const loaded = await request(() => api.GET('/api/v1/calls/{call_id}', { params: { path: { call_id: id } } }))
    if (callId.value === id && seq === infoSeq) info.value = loaded
  }

  /** The call as an action on it returned it: newer than any read still on its way. */
  function showInfo(view: CallInfo): void {
    infoSeq++
    info.value = view
  }

  /** Open /call/<id>: the same call again (back from minimised) stays as it is; another one starts at its check. */
  async function open(id: string): Promise<void> {
    if (callId.value === id && phase.value !== 'idle' && phase.value !== 'closed') {
      if (phase.value === 'check') await openDevices()
      return
    }
    if (active.value) await leave()
    reset()
    callId.value = id
    phase.value = 'check'
    try {
      await loadInfo()
    } catch (e) {
      error.value = e
      return
    }
    if (!viewer.value) await openDevices()
  }

  function reset(): void {
    stopMedia()
    info.value = null
    error.value = null
    notice.value = null
    closedReason.value = ''
    micOn.value = true
    camOn.value = true
    hand.value = false
    sharing.value = false
    mutedByAdmin.value = false
    rights.value = []
    speaker.value = null
    detector = new ActiveSpeaker()
    for (const mid of Object.keys(slots)) delete slots[mid]
    for (const mid of Object.keys(tracks)) delete tracks[mid]
  }

  function openDevices(): Promise<void> {
    checking.value = true
    devices = askDevices().finally(() => {
      checking.value = false
    })
    return devices
  }

  async function askDevices(): Promise<void> {
    error.value = null
    media.value?.getTracks().forEach((track) => track.stop())
    try {
      media.value = await navigator.mediaDevices.getUserMedia({
        audio: microphoneId.value ? { deviceId: { exact: microphoneId.value } } : true,
        video: cameraId.value ? { deviceId: { exact: cameraId.value }, width: 640, height: 480 }
          : { width: 640, height: 480 },
      })
      const found = await navigator.mediaDevices.enumerateDevices()
      cameras.value = found.filter((d) => d.kind === 'videoinput')
      microphones.value = found.filter((d) => d.kind === 'audioinput')
      cameraId.value ||= media.value.getVideoTracks()[0]?.getSettings().deviceId ?? ''
      microphoneId.value ||= media.value.getAudioTracks()[0]?.getSettings().deviceId ?? ''
    } catch (e) {
      say('noDevices', { error: String(e) })
    }
  }

  /** In the call, another camera or microphone (the call's settings): the chosen device's track is sent instead. */
  async function switchDevice(kind: 'audio' | 'video', deviceId: string): Promise<void> {
    try {
      const got = await navigator.mediaDevices.getUserMedia(kind === 'audio'
        ? { audio: { deviceId: { exact: deviceId } } }
        : { video: { deviceId: { exact: deviceId }, width: 640, height: 480 } })
      const [track] = got.getTracks()
      if (!track) return
      if (connection) await connection.replaceDevice(track)
      else track.stop()
      if (kind === 'audio') microphoneId.value = deviceId
      else cameraId.value = deviceId
    } catch (e) {
      say('noDevices', { error: String(e) })
    }
  }

  /** The check page was left before joining: the camera is let go. */
  function leaveCheck(): void {
    if (phase.value === 'check') stopMedia()
  }

  function stopMedia(): void {
    media.value?.getTracks().forEach((track) => track.stop())
    media.value = null
  }

  async function join(): Promise<void> {
    const id = callId.value
    if (!id) return
    error.value = null
    notice.value = null
    phase.value = 'joining'
    try {
      if (!viewer.value) await devices // joined with what the check found, never before it has an answer
      const ticket = await request(() => api.POST('/api/v1/calls/{call_id}/join', { params: { path: { call_id: id } } }))
      info.value = ticket.call
      rights.value = ticket.rights
      const publish = ticket.rights.includes('audio') || ticket.rights.includes('video')
      if (!publish) stopMedia()
      connection = new CallConnection({ sfuUrl: ticket.sfu_url, token: ticket.token, media: media.value ?? new MediaStream(),
                                        iceServers: ticket.ice_servers as RTCIceServer[], publish })
      connection.on(onEvent)
      connection.join()
      poll = setInterval(() => void loadInfo().catch(() => undefined), 4000)
      levelTimer = setInterval(() => void hearSpeakers(), LEVEL_EVERY_MS)
    } catch (e) {
      error.value = e
      phase.value = 'check'
    }
  }

  function onEvent(event: Parameters<Parameters<CallConnection['on']>[0]>[0]): void {
    switch (event.type) {
      case 'joined':
        myId.value = event.userId
        rights.value = event.rights
        if (event.muted) micOn.value = false
        phase.value = 'in'
        break
      case 'track':
        tracks[event.mid] = event.track
        break
      case 'slots':
        for (const [mid, shown] of Object.entries(event.slots)) slots[mid] = shown
        Object.assign(debug.slots, event.slots)
        void loadInfo().catch(() => undefined) // who is in the call changed
        break
      case 'rights':
        rights.value = event.rights
        notice.value = event.rights.includes('screen') ? { key: 'screenAllowed' } : null
        break
      case 'muted':
        mutedByAdmin.value = event.muted
        if (event.muted) {
          micOn.value = false
          say('mutedByAdmin')
        }
        break
      case 'error':
        if (event.code === 'call.screen_not_allowed') {
          sharing.value = false
          say('screenRefused')
        } else {
          say('raw', { text: event.message ?? event.code })
        }
        debug.errors.push(event.code)
        break
      case 'recording': // CA-6: said by the SFU to everyone at once (the poll would take up to 4 s)
        if (info.value && info.value.recording !== event.recording) showInfo({ ...info.value, recording: event.recording })
        break
      case 'moved':
        void loadInfo().then(() => {
          if (event.room === callId.value || event.room === 'main') say('rooms.back')
          else say('rooms.movedTo', { room: roomName(event.room) })
        }).catch(() => undefined)
        break
      case 'closed':
        phase.value = 'closed'
        closedReason.value = event.reason
        finish()
        break
    }
  }

  async function hearSpeakers(): Promise<void> {
    if (!connection) return
    const levels = levelsByUser(await connection.levels(), slots)
    delete levels[me.value]
    speaker.value = detector.update(levels, performance.now())
  }

  function finish(): void {
    if (poll) clearInterval(poll)
    if (levelTimer) clearInterval(levelTimer)
    poll = levelTimer = null
    connection = null
    speaker.value = null
    stopMedia()
  }

  function roomName(room: string): string {
    const rooms = info.value?.breakout_rooms ?? {}
    const index = Object.keys(rooms).indexOf(room)
    return index >= 0 ? String(index + 1) : rooms[room] || room // numbered in the person's language
  }

  async function toggleMic(): Promise<void> {
    if (!micOn.value && mutedByAdmin.value && callId.value) { // muted by the admin: unmuting oneself is told
      const id = callId.value
      try {
        await request(() => api.DELETE('/api/v1/calls/{call_id}/mute', { params: { path: { call_id: id } } }))
        mutedByAdmin.value = false
      } catch (e) {
        error.value = e
        return
      }
    }
    micOn.value = !micOn.value
    connection?.setMicrophone(micOn.value)
  }

  function toggleCam(): void {
    camOn.value = !camOn.value
    connection?.setCamera(camOn.value)
  }

  async function toggleScreen(): Promise<void> {
    notice.value = null
    if (!connection) return
    if (sharing.value) {
      await connection.shareScreen(null)
      sharing.value = false
      return
    }
    if (!rights.value.includes('screen')) { // said before asking the browser for the screen (CA-4)
      say('screenRefused')
      debug.errors.push('call.screen_not_allowed')
      return
    }
    try {
      const display = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 5 } })
      sharing.value = await connection.shareScreen(display.getVideoTracks()[0] ?? null)
      if (!sharing.value) say('screenRefused')
    } catch (e) {
      say('raw', { text: String(e) })
    }
  }

  async function toggleHand(): Promise<void> {
    const id = callId.value
    if (!id) return
    try {
      await request(() => api.PUT('/api/v1/calls/{call_id}/hand', { params: { path: { call_id: id } },
                                                                     body: { raised: !hand.value } }))
      hand.value = !hand.value
    } catch (e) {
      error.value = e
    }
  }

  /** Runs an API action of the call's admin panel and reloads the call; a refusal goes to `error`. */
  async function act(work: (callId: string) => Promise<unknown>): Promise<void> {
    const id = callId.value
    if (!id) return
    error.value = null
    try {
      await work(id)
      await loadInfo()
    } catch (e) {
      error.value = e
    }
  }

  async function leave(): Promise<void> {
    const id = callId.value
    const wasActive = active.value
    connection?.leave()
    finish()
    if (wasActive) phase.value = 'closed'
    closedReason.value ||= 'left'
    if (id) {
      await request(() => api.POST('/api/v1/calls/{call_id}/leave', { params: { path: { call_id: id } } }))
        .catch(() => undefined)
    }
  }

  // What the page receives and sends, for people and for the browser tests (as the gateway's old call page had);
  // plain objects: DevTools hands a reactive proxy over as {}.
  const debug = { slots: {} as Record<string, Shown | null>, errors: [] as string[] }
  Object.assign(globalThis as unknown as Record<string, unknown>, {
    sferaState: debug,
    sferaStats: () => connection?.stats() ?? Promise.resolve(null),
    sferaBrightness: (mid: string) => brightness(document.querySelector<HTMLVideoElement>(`video[data-mid="${mid}"]`)),
    sferaSpeaker: () => speaker.value,
    sferaSending: () => connection?.sending() ?? null,
  })

  return { callId, info, error, notice, phase, closedReason, media, cameras, microphones, cameraId, microphoneId,
           checking, micOn, camOn, hand, sharing, mutedByAdmin, slots, tracks, rights, myId, layout, speaker, chatOpen,
           me, isAdmin, viewer, active, participants, tiles, audioMids, focus,
           open, openDevices, switchDevice, leaveCheck, join, leave, loadInfo, showInfo, roomName, toggleMic,
           toggleCam, toggleScreen, toggleHand, act, say }
})
