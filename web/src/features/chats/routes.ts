/** The messenger's pages (issue #15). */
import type { RouteRecordRaw } from 'vue-router'

export const chatRoutes: RouteRecordRaw[] = [
  { path: '/chats', name: 'chats', component: () => import('./ChatsView.vue'), meta: { auth: true, title: 'chats.title' } },
  { path: '/chats/reports', name: 'chat-reports', component: () => import('./ReportsView.vue'),
    meta: { auth: true, title: 'chats.reports.title' } },
  { path: '/ejournal/:providerId/lessons/:lessonId', name: 'lesson-chat', component: () => import('./LessonChatView.vue'),
    meta: { auth: true, title: 'chats.lesson.title' } },
  { path: '/chats/:id', name: 'chat', component: () => import('./ChatView.vue'), meta: { auth: true, title: 'chats.chat' } },
]
