// The link to a call (CA-10): /call/<call id>#access_token=<token>. Asks for the camera and the
// microphone, gets a join token from the API, and talks to the SFU: it publishes microphone,
// camera and (when allowed) screen, and receives four video slots and the three loudest voices.
const callId = location.pathname.split("/").pop();
const params = new URLSearchParams(location.hash.slice(1) || location.search.slice(1));
const accessToken = params.get("access_token") || localStorage.getItem("sfera.access_token");
const state = window.sferaState = { phase: "start", slots: {}, errors: [], messages: [] };
const $ = (id) => document.getElementById(id);
const status = (text) => { state.phase = text; $("status").textContent = text; };

async function api(method, path, body) {
  const response = await fetch(`/api/v1${path}`, { method, headers: {
    "Authorization": `Bearer ${accessToken}`, "Content-Type": "application/json" },
    body: body ? JSON.stringify(body) : undefined });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error((data.error && data.error.message) || response.statusText);
  return data;
}

const VIDEO_SLOTS = 4, AUDIO_SLOTS = 3;
let pc, ws, media, screenSender;
const tiles = {};

function tile(mid, track) {
  if (track.kind === "audio") {
    const audio = document.createElement("audio");
    audio.autoplay = true; audio.srcObject = new MediaStream([track]); document.body.appendChild(audio);
    return;
  }
  const figure = document.createElement("figure");
  const video = document.createElement("video");
  video.autoplay = true; video.playsInline = true; video.muted = true; video.srcObject = new MediaStream([track]);
  video.dataset.mid = mid;
  const caption = document.createElement("figcaption");
  figure.append(video, caption); $("tiles").appendChild(figure);
  tiles[mid] = { video, caption };
}

function showSlots(slots) {
  Object.assign(state.slots, slots);
  for (const [mid, shown] of Object.entries(state.slots)) {
    const t = tiles[mid];
    if (!t) continue;
    t.caption.textContent = shown ? `${shown.source} · ${shown.user_id.slice(0, 8)}` : "";
    t.video.parentElement.style.display = shown ? "" : "none";
  }
}

async function join() {
  try {
    status("доступ к камере и микрофону");
    media = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 480 } });
    $("local").srcObject = media;
    status("вход в звонок");
    const ticket = await api("POST", `/calls/${callId}/join`);
    state.rights = ticket.rights;
    pc = new RTCPeerConnection({ iceServers: [], bundlePolicy: "max-bundle" });
    const sources = [];
    for (const track of media.getTracks()) {
      pc.addTransceiver(track, { direction: "sendonly" });
      sources.push(track.kind === "audio" ? "microphone" : "camera");
    }
    screenSender = pc.addTransceiver("video", { direction: "sendonly" }).sender;
    sources.push("screen");
    for (let i = 0; i < VIDEO_SLOTS; i++) pc.addTransceiver("video", { direction: "recvonly" });
    for (let i = 0; i < AUDIO_SLOTS; i++) pc.addTransceiver("audio", { direction: "recvonly" });
    pc.ontrack = (event) => tile(event.transceiver.mid, event.track);
    pc.onconnectionstatechange = () => status(pc.connectionState);
    ws = new WebSocket(ticket.sfu_url);
    ws.onmessage = async (event) => {
      const message = JSON.parse(event.data);
      state.messages.push(message.type);
      if (message.type === "joined") {
        await pc.setLocalDescription(await pc.createOffer());
        await new Promise((resolve) => {  // the SFU takes the candidates in the offer (no trickle)
          if (pc.iceGatheringState === "complete") return resolve();
          pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && resolve();
          setTimeout(resolve, 3000);
        });
        const mids = {};
        pc.getTransceivers().forEach((t, i) => { if (i < sources.length) mids[t.mid] = sources[i]; });
        ws.send(JSON.stringify({ type: "offer", sdp: pc.localDescription.sdp, sources: mids }));
      } else if (message.type === "answer") {
        await pc.setRemoteDescription({ type: "answer", sdp: message.sdp });
      } else if (message.type === "slots") {
        showSlots(message.slots);
      } else if (message.type === "rights") {
        state.rights = message.rights;
      } else if (message.type === "muted") {
        media.getAudioTracks().forEach((t) => t.enabled = false);
      } else if (["removed", "ended"].includes(message.type)) {
        status(message.type === "ended" ? "звонок завершён" : "вас удалили из звонка");
        pc.close();
      } else if (message.type === "error") {
        state.errors.push(message.code); status(message.message);
      }
    };
    ws.onopen = () => ws.send(JSON.stringify({ type: "join", token: ticket.token }));
  } catch (error) {
    state.errors.push(String(error)); status(String(error));
  }
}

// What the page received and sent, for people and for the browser test.
window.sferaStats = async () => {
  const out = { inboundVideoFrames: 0, inboundAudioPackets: 0, outboundVideoFrames: 0, outboundAudioPackets: 0 };
  if (!pc) return out;
  (await pc.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "video") out.inboundVideoFrames += r.framesDecoded || 0;
    if (r.type === "inbound-rtp" && r.kind === "audio") out.inboundAudioPackets += r.packetsReceived || 0;
    if (r.type === "outbound-rtp" && r.kind === "video") out.outboundVideoFrames += r.framesEncoded || 0;
    if (r.type === "outbound-rtp" && r.kind === "audio") out.outboundAudioPackets += r.packetsSent || 0;
  });
  return out;
};
// The average brightness of what a slot's video shows (0-255).
window.sferaBrightness = (mid) => {
  const t = tiles[mid];
  if (!t || !t.video.videoWidth) return null;
  const canvas = document.createElement("canvas");
  canvas.width = 64; canvas.height = 48;
  const context = canvas.getContext("2d");
  context.drawImage(t.video, 0, 0, 64, 48);
  const pixels = context.getImageData(0, 0, 64, 48).data;
  let sum = 0;
  for (let i = 0; i < pixels.length; i += 4) sum += (pixels[i] + pixels[i + 1] + pixels[i + 2]) / 3;
  return sum / (pixels.length / 4);
};

$("mic").onclick = () => media && media.getAudioTracks().forEach((t) => t.enabled = !t.enabled);
$("cam").onclick = () => media && media.getVideoTracks().forEach((t) => t.enabled = !t.enabled);
$("screen").onclick = async () => {
  if (!state.rights || !state.rights.includes("screen")) return status("показ экрана не разрешён");
  const display = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 5 } });
  await screenSender.replaceTrack(display.getVideoTracks()[0]);
};
let hand = false;
$("hand").onclick = async () => { hand = !hand; await api("PUT", `/calls/${callId}/hand`, { raised: hand }); };
$("leave").onclick = async () => { ws && ws.send(JSON.stringify({ type: "leave" })); pc && pc.close();
  await api("POST", `/calls/${callId}/leave`).catch(() => {}); status("вы вышли"); };
join();
