/** A call inside the app (issue #15, CA-*): the link /call/<id>. */
import type { RouteRecordRaw } from 'vue-router'

export const callRoutes: RouteRecordRaw[] = [
  { path: '/call/:id', name: 'call', component: () => import('./CallView.vue'), meta: { auth: true, title: 'calls.title' } },
]
