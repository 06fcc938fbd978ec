import { createPinia } from 'pinia'
import { createApp } from 'vue'

import { onSessionEnded } from '@/api/client'
import { i18n, setLocale } from '@/i18n'
import { router } from '@/router'
import '@/ui/base.css'

import App from './App.vue'

const app = createApp(App)
app.use(createPinia())
app.use(i18n)
app.use(router)
setLocale(i18n.global.locale.value as 'ru' | 'en')

let navigating = false
router.beforeEach(() => {
  navigating = true
})
router.afterEach(() => {
  navigating = false
})
router.onError(() => {
  navigating = false
})

// A session that ends under a request (expired, signed out elsewhere): back to sign-in, and
// after it back to where the person was. During a navigation the guard does the same.
onSessionEnded(() => {
  const here = router.currentRoute.value
  if (!navigating && here.meta.auth) {
    void router.push({ name: 'sign-in', query: { redirect: here.fullPath, ended: '1' } })
  }
})

app.mount('#app')

// Installable, and the shell opens offline (public/sw.js); not in the dev server.
if (import.meta.env.PROD && 'serviceWorker' in navigator) {
  window.addEventListener('load', () => void navigator.serviceWorker.register('/sw.js').catch(() => undefined))
}
